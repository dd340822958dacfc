/* Escape attempts, one mode per route out of a sandbox, for
   tests/escape_test.cpp. Static (like noop.c) so that it runs inside a busybox
   rootfs without the host's libraries.

     escape MODE [ARG...]

   Each mode makes its attempt and prints exactly one line:
     ESCAPED <what worked>
     BLOCKED <errno name or reason>
     UNAVAILABLE <reason>   the kernel lacks the feature (the test skips)
   and exits 0 in all three cases; 2 for a usage error. The init-* modes
   print REFUSED instead, and try nothing, when the pid 1 they see is the
   host's own (no pid namespace): they never touch a process the test did
   not start.

   Most modes run in a forked child, so that a seccomp filter that kills or
   traps reads as BLOCKED (SIGSYS) rather than as a silent crash. The child
   writes its line into a pipe and the parent prints it.

   It only ever writes to the target file it is given, which the test made
   for it; the clock is never set (settimeofday gets no time), nothing is
   written to /proc/sys, and no bpf program is ever attached. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* ---- the one line ---------------------------------------------------- */

static char result_line[4096];

static void report(const char* kind, const char* format, ...) __attribute__((format(printf, 2, 3)));
static void report(const char* kind, const char* format, ...) {
    if (result_line[0]) return; /* the first verdict stands */
    int n = snprintf(result_line, sizeof result_line, "%s ", kind);
    va_list args;
    va_start(args, format);
    vsnprintf(result_line + n, sizeof result_line - (size_t)n - 1, format, args);
    va_end(args);
    for (char* c = result_line; *c; ++c)
        if (*c == '\n') *c = ' ';
    strcat(result_line, "\n");
}

static const char* err_name(int e) {
    const char* name = strerrorname_np(e);
    static char buffer[32];
    if (name) return name;
    snprintf(buffer, sizeof buffer, "errno %d", e);
    return buffer;
}

static const char* signal_name(int s) {
    const char* name = sigabbrev_np(s);
    static char buffer[32];
    if (name) snprintf(buffer, sizeof buffer, "SIG%s", name);
    else snprintf(buffer, sizeof buffer, "signal %d", s);
    return buffer;
}

/* ENOSYS from a kernel that lacks the call, as opposed to a refusal. A
   seccomp filter that answers ENOSYS reads the same; the test tells them
   apart by the unconfined run. */
static void refused(const char* what, int e) {
    if (e == ENOSYS) report("UNAVAILABLE", "%s: ENOSYS", what);
    else report("BLOCKED", "%s: %s", what, err_name(e));
}

static const char escape_text[] = "escaped\n";

/* Appends to a file; 0 when the whole text landed, else an errno. */
static int append_to(int dir_fd, const char* path) {
    int fd = openat(dir_fd, path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return errno;
    ssize_t n = write(fd, escape_text, sizeof escape_text - 1);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (n == (ssize_t)(sizeof escape_text - 1)) return 0;
    return e ? e : EIO;
}

/* The per-mount flags of a mount, in mount(2)'s terms, without MS_RDONLY:
   a remount must repeat the ones it keeps, or a user namespace refuses to
   clear a locked one. */
static unsigned long kept_mount_flags(const char* path) {
    struct statvfs s;
    if (statvfs(path, &s) != 0) return 0;
    unsigned long flags = 0;
    if (s.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (s.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (s.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (s.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (s.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (s.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static int writable_remount(const char* path) {
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | kept_mount_flags(path), NULL) == 0) return 0;
    return errno;
}

/* Whether the pid 1 this process sees is the host's: kthreadd is pid 2 only
   in the initial pid namespace (and where a sandbox shows the host's /proc).
   The init-* modes then touch nothing and say so, on a line that is none of
   the three verdicts, so that the test fails rather than passes or skips. */
static int pid_1_is_the_hosts(void) {
    char name[64] = "";
    int fd = open("/proc/2/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, name, sizeof name - 1);
    close(fd);
    return n > 0 && strncmp(name, "kthreadd\n", 9) == 0;
}

static int refuse_the_hosts_init(void) {
    if (!pid_1_is_the_hosts()) return 0;
    snprintf(result_line, sizeof result_line,
             "REFUSED pid 1 is the host's init (kthreadd is pid 2): no pid namespace, nothing was tried\n");
    return 1;
}

/* ---- remount-root TARGET [UMOUNT...] --------------------------------- */

/* Makes / writable again (after lazily unmounting whatever covers the
   target's directory, if asked) and appends to TARGET, a file of the host's
   that the sandbox sees read-only. */
static void mode_remount_root(int argc, char** argv) {
    if (argc < 1) {
        report("BLOCKED", "usage: remount-root TARGET [UMOUNT...]");
        return;
    }
    const char* target = argv[0];
    for (int i = 1; i < argc; ++i) umount2(argv[i], MNT_DETACH);
    int root = writable_remount("/");
    /* The target may sit on a mount of its own below /: remount each
       ancestor that is a mount point (the others answer EINVAL). */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", target);
    for (char* slash; (slash = strrchr(path, '/')) && slash != path;) {
        *slash = '\0';
        writable_remount(path);
    }
    int e = append_to(AT_FDCWD, target);
    if (e == 0) report("ESCAPED", "remounted / read-write (%s) and wrote %s", root ? err_name(root) : "ok", target);
    else if (root) report("BLOCKED", "remount /: %s (write: %s)", err_name(root), err_name(e));
    else report("BLOCKED", "remount / worked but the write did not: %s", err_name(e));
}

/* ---- mknod-mount MAJOR:MINOR FSTYPE TARGET_REL ------------------------- */

/* A block device node for the host's disk on a tmpfs of our own (ctr's
   tmpfs may be nodev), mounted, then TARGET_REL (relative to that
   filesystem's root) appended to. */
static void mode_mknod_mount(int argc, char** argv) {
    unsigned major_number = 0, minor_number = 0;
    if (argc < 3 || sscanf(argv[0], "%u:%u", &major_number, &minor_number) != 2) {
        report("BLOCKED", "usage: mknod-mount MAJOR:MINOR FSTYPE TARGET_REL");
        return;
    }
    const char* fstype = argv[1];
    const char* target = argv[2];
    const char* base = NULL;
    static const char* const candidates[] = {"/tmp/ctr-escape-mknod", "/dev/shm/ctr-escape-mknod",
                                             "/ctr-escape-mknod"};
    int mkdir_error = 0;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; ++i) {
        if (mkdir(candidates[i], 0700) == 0 || errno == EEXIST) {
            base = candidates[i];
            break;
        }
        mkdir_error = errno;
    }
    if (!base) {
        report("BLOCKED", "no writable directory for a mount point: %s", err_name(mkdir_error));
        return;
    }
    /* Our own tmpfs: its mount has no nodev unless the kernel forces it
       (it does in a user namespace). If it fails, try where we are. */
    int tmpfs_error = mount("ctr-escape", base, "tmpfs", 0, "size=64k,mode=0700") == 0 ? 0 : errno;
    char node[PATH_MAX], point[PATH_MAX], file[2 * PATH_MAX + 2];
    snprintf(node, sizeof node, "%s/disk", base);
    snprintf(point, sizeof point, "%s/mnt", base);
    if (mknod(node, S_IFBLK | 0600, makedev(major_number, minor_number)) != 0) {
        report("BLOCKED", "mknod %u:%u: %s", major_number, minor_number, err_name(errno));
    } else if (mkdir(point, 0700) != 0 && errno != EEXIST) {
        report("BLOCKED", "mkdir %s: %s", point, err_name(errno));
    } else if (mount(node, point, fstype, 0, NULL) != 0) {
        int e = errno;
        report("BLOCKED", "mount %u:%u (%s): %s%s", major_number, minor_number, fstype, err_name(e),
               tmpfs_error ? " (own tmpfs refused too)" : "");
    } else {
        snprintf(file, sizeof file, "%s/%s", point, target);
        int e = append_to(AT_FDCWD, file);
        if (e == 0) report("ESCAPED", "mounted block device %u:%u and wrote %s", major_number, minor_number, target);
        else report("BLOCKED", "mounted block device %u:%u but the write did not land: %s", major_number,
                    minor_number, err_name(e));
        umount2(point, MNT_DETACH);
    }
    unlink(node);
    rmdir(point);
    if (!tmpfs_error) umount2(base, MNT_DETACH);
    rmdir(base);
}

/* ---- open-by-handle MOUNT_DIR TARGET_REL ------------------------------ */

/* ext2/3/4's handle for the filesystem's root (inode 2, generation 0 skips
   the check) opened on a mount of the same filesystem: the real root, not
   the sandbox's, then TARGET_REL relative to it. */
static void mode_open_by_handle(int argc, char** argv) {
    if (argc < 2) {
        report("BLOCKED", "usage: open-by-handle MOUNT_DIR TARGET_REL");
        return;
    }
    int mount_fd = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mount_fd < 0) {
        report("BLOCKED", "open %s: %s", argv[0], err_name(errno));
        return;
    }
    struct file_handle* handle = calloc(1, sizeof *handle + 8);
    if (!handle) {
        report("BLOCKED", "out of memory");
        close(mount_fd);
        return;
    }
    const uint32_t ino_and_generation[2] = {2, 0};
    handle->handle_bytes = 8;
    handle->handle_type = 1; /* FILEID_INO32_GEN */
    memcpy(handle->f_handle, ino_and_generation, sizeof ino_and_generation);
    int root = open_by_handle_at(mount_fd, handle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(handle);
    if (root < 0) {
        int e = errno;
        /* ESTALE is also what a kernel that lets the unprivileged decode
           handles says for one outside their mount: a refusal. The test
           checks that the filesystem is ext4 before it asks. */
        if (e == ENOSYS || e == EOPNOTSUPP)
            report("UNAVAILABLE", "open_by_handle_at: %s (no ext4-style handles here)", err_name(e));
        else if (e == ESTALE)
            report("BLOCKED", "open_by_handle_at: ESTALE (refused outside the mount, or not an ext4-style handle)");
        else report("BLOCKED", "open_by_handle_at: %s", err_name(e));
        close(mount_fd);
        return;
    }
    int e = append_to(root, argv[1]);
    if (e == 0) {
        report("ESCAPED", "wrote %s through a handle for inode 2", argv[1]);
    } else {
        int fd = openat(root, argv[1], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) report("ESCAPED", "read %s through a handle for inode 2 (write: %s)", argv[1], err_name(e));
        else report("BLOCKED", "handle opened but %s did not: %s", argv[1], err_name(errno));
        if (fd >= 0) close(fd);
    }
    close(root);
    close(mount_fd);
}

/* ---- init-fds TRIES MARKER_REL ---------------------------------------- */

/* Races pid 1 for the fds it inherited from the caller: every fd that is a
   directory outside the sandbox leads, by "..", to the host's root, and from
   there to MARKER_REL (a file the test made, relative to the host's root,
   that the sandbox cannot see otherwise). Not forked: the window is short. */
static void mode_init_fds(int argc, char** argv) {
    if (argc < 2) {
        report("BLOCKED", "usage: init-fds TRIES MARKER_REL");
        return;
    }
    if (refuse_the_hosts_init()) return;
    int tries = atoi(argv[0]);
    const char* marker = argv[1];
    char climb[PATH_MAX] = "";
    for (int i = 0; i < 40; ++i) strcat(climb, "../");
    strncat(climb, marker, sizeof climb - strlen(climb) - 1);

    int listed = 0, list_error = 0, seen = 0;
    char held[1024] = "";  /* a directory or cgroup fd pid 1 held, for the report */
    char last[1024] = "";  /* the last entry tried and why it led nowhere */
    for (int t = 0; t < tries; ++t) {
        DIR* dir = opendir("/proc/1/fd");
        if (!dir) {
            list_error = errno;
            continue;
        }
        ++listed;
        const int own = getpid() == 1 ? dirfd(dir) : -1;
        for (struct dirent* entry; (entry = readdir(dir));) {
            if (entry->d_name[0] == '.' || atoi(entry->d_name) == own) continue;
            ++seen;
            char link[64], path[PATH_MAX + 64], points_to[256] = "?";
            snprintf(link, sizeof link, "/proc/1/fd/%d", atoi(entry->d_name));
            snprintf(path, sizeof path, "%s/%s", link, climb);
            int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            int through = open(link, O_PATH | O_CLOEXEC);
            ssize_t n = readlink(link, points_to, sizeof points_to - 1);
            if (n >= 0) points_to[n] = '\0';
            int climb_error = fd < 0 ? errno : 0;
            if (fd < 0 && through >= 0) fd = openat(through, climb, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            snprintf(last, sizeof last, "last: fd %s -> %s: %s", entry->d_name, points_to, err_name(climb_error));
            if (fd >= 0) {
                report("ESCAPED", "opened %s through /proc/1/fd/%s (-> %s) on try %d", marker, entry->d_name,
                       points_to, t + 1);
                close(fd);
                if (through >= 0) close(through);
                closedir(dir);
                return;
            }
            if (through >= 0 && !held[0]) {
                struct stat st;
                struct statfs sf;
                const int is_dir = fstat(through, &st) == 0 && S_ISDIR(st.st_mode);
                const int is_cgroup = fstatfs(through, &sf) == 0 &&
                                      (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC);
                if (is_dir || is_cgroup)
                    snprintf(held, sizeof held, "pid 1 held fd %s -> %s (%s%s) on try %d", entry->d_name, points_to,
                             is_dir ? "a directory" : "a file", is_cgroup ? " of a cgroup file system" : "", t + 1);
            }
            if (through >= 0) close(through);
        }
        closedir(dir);
    }
    if (held[0]) report("ESCAPED", "%s", held);
    else if (!listed) report("BLOCKED", "/proc/1/fd: %s", err_name(list_error));
    else report("BLOCKED", "no fd of pid 1 led outside in %d tries (%d entries seen%s%s)", tries, seen,
                last[0] ? "; " : "", last);
}

/* ---- init-environ MARKER, init-cmdline MARKER ------------------------- */

static void read_init_file(const char* name, const char* marker) {
    if (refuse_the_hosts_init()) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/1/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        report("BLOCKED", "open %s: %s", path, err_name(errno));
        return;
    }
    static char text[1 << 20];
    size_t size = 0;
    ssize_t n;
    while (size < sizeof text && (n = read(fd, text + size, sizeof text - size)) > 0) size += (size_t)n;
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e && size == 0) report("BLOCKED", "read %s: %s", path, err_name(e));
    else if (memmem(text, size, marker, strlen(marker)))
        report("ESCAPED", "%s holds the marker (%zu bytes)", path, size);
    else report("BLOCKED", "%s holds no marker (%zu bytes)", path, size);
}

static void mode_init_environ(int argc, char** argv) {
    if (argc < 1) report("BLOCKED", "usage: init-environ MARKER");
    else read_init_file("environ", argv[0]);
}

static void mode_init_cmdline(int argc, char** argv) {
    if (argc < 1) report("BLOCKED", "usage: init-cmdline MARKER");
    else read_init_file("cmdline", argv[0]);
}

/* ---- init-exe, init-ptrace, init-mem ---------------------------------- */

static void mode_init_exe(int argc, char** argv) {
    (void)argc, (void)argv;
    if (refuse_the_hosts_init()) return;
    char target[PATH_MAX];
    ssize_t n = readlink("/proc/1/exe", target, sizeof target - 1);
    int link_error = n < 0 ? errno : 0;
    if (n >= 0) target[n] = '\0';
    int fd = open("/proc/1/exe", O_RDONLY | O_CLOEXEC);
    int open_error = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    if (n >= 0 || fd >= 0)
        report("ESCAPED", "/proc/1/exe: readlink %s, open %s", n >= 0 ? target : err_name(link_error),
               fd >= 0 ? "ok" : err_name(open_error));
    else report("BLOCKED", "/proc/1/exe: readlink %s, open %s", err_name(link_error), err_name(open_error));
}

/* PTRACE_SEIZE stops nothing; the kernel detaches when this process exits,
   which it does at once. */
static void mode_init_ptrace(int argc, char** argv) {
    (void)argc, (void)argv;
    if (refuse_the_hosts_init()) return;
    if (ptrace(PTRACE_SEIZE, 1, NULL, NULL) == 0) report("ESCAPED", "PTRACE_SEIZE of pid 1 worked");
    else refused("PTRACE_SEIZE pid 1", errno);
}

static void mode_init_mem(int argc, char** argv) {
    (void)argc, (void)argv;
    if (refuse_the_hosts_init()) return;
    int fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        report("ESCAPED", "opened /proc/1/mem");
    } else {
        report("BLOCKED", "open /proc/1/mem: %s", err_name(errno));
    }
}

/* ---- euid: run as a setuid-root copy by another user ------------------ */

static void mode_euid(int argc, char** argv) {
    (void)argc, (void)argv;
    uid_t real = getuid(), effective = geteuid();
    if (real == 0) report("UNAVAILABLE", "already uid 0: run the setuid copy as another user");
    else if (effective == 0) report("ESCAPED", "euid=0 uid=%u", (unsigned)real);
    else report("BLOCKED", "the setuid bit did not apply: euid=%u uid=%u", (unsigned)effective, (unsigned)real);
}

/* ---- bpf, perf, userfaultfd, set-clock -------------------------------- */

static long load_program(enum bpf_prog_type type, unsigned kernel_version) {
    struct bpf_insn program[2];
    memset(program, 0, sizeof program);
    program[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    program[0].dst_reg = BPF_REG_0;
    program[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = type;
    attr.insn_cnt = 2;
    attr.insns = (uint64_t)(uintptr_t)program;
    attr.license = (uint64_t)(uintptr_t) "GPL";
    attr.kern_version = kernel_version;
    return syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
}

/* Loads, never attaches: a kprobe program that loads is the escape (it
   needs CAP_BPF and CAP_PERFMON of the host); a socket filter is noted. */
static void mode_bpf(int argc, char** argv) {
    (void)argc, (void)argv;
    struct utsname u;
    unsigned a = 0, b = 0, c = 0;
    if (uname(&u) == 0) sscanf(u.release, "%u.%u.%u", &a, &b, &c);
    const unsigned version = (a << 16) + (b << 8) + (c > 255 ? 255 : c);
    long filter = load_program(BPF_PROG_TYPE_SOCKET_FILTER, version);
    int filter_error = filter < 0 ? errno : 0;
    if (filter >= 0) close((int)filter);
    char filter_text[64];
    snprintf(filter_text, sizeof filter_text, "socket filter: %s", filter >= 0 ? "loaded" : err_name(filter_error));
    long kprobe = load_program(BPF_PROG_TYPE_KPROBE, version);
    if (kprobe >= 0) {
        close((int)kprobe);
        report("ESCAPED", "loaded a kprobe program (%s)", filter_text);
        return;
    }
    int e = errno;
    if (e == ENOSYS || e == EINVAL || e == EOPNOTSUPP)
        report("UNAVAILABLE", "kprobe program: %s (%s)", err_name(e), filter_text);
    else report("BLOCKED", "kprobe program: %s (%s)", err_name(e), filter_text);
}

static void mode_perf(int argc, char** argv) {
    (void)argc, (void)argv;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    long fd = syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd >= 0) {
        close((int)fd);
        report("ESCAPED", "perf_event_open of every process on CPU 0 worked");
    } else if (errno == ENOENT || errno == ENODEV) {
        report("UNAVAILABLE", "perf_event_open: %s", err_name(errno));
    } else {
        refused("perf_event_open(pid -1, cpu 0)", errno);
    }
}

static void mode_userfaultfd(int argc, char** argv) {
    (void)argc, (void)argv;
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd >= 0) {
        close((int)fd);
        report("ESCAPED", "userfaultfd gave fd %ld", fd);
    } else {
        refused("userfaultfd", errno);
    }
}

/* settimeofday(NULL, NULL) only asks for CAP_SYS_TIME: the kernel checks it
   and, with neither a time nor a zone, changes nothing. Never pass a time. */
static void mode_set_clock(int argc, char** argv) {
    (void)argc, (void)argv;
    if (syscall(SYS_settimeofday, NULL, NULL) == 0)
        report("ESCAPED", "settimeofday(NULL, NULL) passed the CAP_SYS_TIME check (nothing was changed)");
    else refused("settimeofday(NULL, NULL)", errno);
}

/* ---- proc-mount -------------------------------------------------------- */

/* A fresh proc has none of the masks over /proc/kcore, /proc/sys and the
   like; and a masked /proc/sys made read-write again. Nothing is written to
   either. */
static void mode_proc_mount(int argc, char** argv) {
    (void)argc, (void)argv;
    const char* base = NULL;
    static const char* const candidates[] = {"/tmp/ctr-escape-proc", "/dev/shm/ctr-escape-proc", "/ctr-escape-proc"};
    int mkdir_error = 0;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; ++i) {
        if (mkdir(candidates[i], 0700) == 0 || errno == EEXIST) {
            base = candidates[i];
            break;
        }
        mkdir_error = errno;
    }
    char worked[256] = "", refusals[256] = "";
    if (base) {
        const int own_tmpfs = mount("ctr-escape", base, "tmpfs", 0, "size=64k,mode=0700") == 0;
        char point[PATH_MAX];
        snprintf(point, sizeof point, "%s/proc", base);
        mkdir(point, 0700);
        if (mount("proc", point, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
            snprintf(worked, sizeof worked, "mounted a fresh proc");
            umount2(point, MNT_DETACH);
        } else {
            snprintf(refusals, sizeof refusals, "fresh proc: %s", err_name(errno));
        }
        rmdir(point);
        if (own_tmpfs) umount2(base, MNT_DETACH);
        rmdir(base);
    } else {
        snprintf(refusals, sizeof refusals, "fresh proc: no directory to mount on (%s)", err_name(mkdir_error));
    }
    struct statvfs sys;
    if (statvfs("/proc/sys", &sys) == 0 && !(sys.f_flag & ST_RDONLY)) {
        snprintf(worked + strlen(worked), sizeof worked - strlen(worked), "%s/proc/sys is read-write already",
                 worked[0] ? "; " : "");
    } else if (writable_remount("/proc/sys") == 0) {
        snprintf(worked + strlen(worked), sizeof worked - strlen(worked), "%sremounted /proc/sys read-write",
                 worked[0] ? "; " : "");
        /* Back to read-only at once; the namespace dies with the sandbox anyway. */
        mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_mount_flags("/proc/sys"), NULL);
    } else {
        snprintf(refusals + strlen(refusals), sizeof refusals - strlen(refusals), "; remount /proc/sys: %s",
                 err_name(errno));
    }
    if (worked[0]) report("ESCAPED", "%s", worked);
    else report("BLOCKED", "%s", refusals);
}

/* ---- new-namespaces ---------------------------------------------------- */

/* Each namespace by unshare and by a fork-style clone, each in a child that
   exits at once. */
static void mode_new_namespaces(int argc, char** argv) {
    (void)argc, (void)argv;
    static const struct {
        int flag;
        const char* name;
    } kinds[] = {{CLONE_NEWUSER, "user"}, {CLONE_NEWNS, "mount"}, {CLONE_NEWNET, "network"},
                 {CLONE_NEWPID, "pid"},   {CLONE_NEWUTS, "uts"},  {CLONE_NEWIPC, "ipc"},
                 {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"}};
    char worked[512] = "", refusals[512] = "";
    int all_enosys = 1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
        for (int by_clone = 0; by_clone < 2; ++by_clone) {
            if (by_clone && kinds[i].flag == CLONE_NEWTIME) continue; /* clone(2) has no bit for it */
            int pipe_fds[2];
            if (pipe2(pipe_fds, O_CLOEXEC) != 0) continue;
            long pid;
            int code = 0;
            if (by_clone) {
                pid = syscall(SYS_clone, (unsigned long)kinds[i].flag | SIGCHLD, NULL, NULL, NULL, NULL);
                if (pid == 0) _exit(0);
                if (pid < 0) code = errno;
            } else {
                pid = fork();
                if (pid == 0) {
                    int e = unshare(kinds[i].flag) == 0 ? 0 : errno;
                    (void)!write(pipe_fds[1], &e, sizeof e);
                    _exit(0);
                }
            }
            close(pipe_fds[1]);
            if (pid > 0) {
                int status = 0;
                if (!by_clone && read(pipe_fds[0], &code, sizeof code) != (ssize_t)sizeof code) code = -1;
                waitpid((pid_t)pid, &status, 0);
                if (!by_clone && WIFSIGNALED(status)) code = -WTERMSIG(status);
            }
            close(pipe_fds[0]);
            char* out = code == 0 ? worked : refusals;
            const size_t used = strlen(out);
            if (code == 0)
                snprintf(out + used, 512 - used, "%s%s(%s)", used ? " " : "", by_clone ? "clone" : "unshare",
                         kinds[i].name);
            else if (code > 0)
                snprintf(out + used, 512 - used, "%s%s(%s)=%s", used ? " " : "", by_clone ? "clone" : "unshare",
                         kinds[i].name, err_name(code));
            else
                snprintf(out + used, 512 - used, "%s%s(%s)=%s", used ? " " : "", by_clone ? "clone" : "unshare",
                         kinds[i].name, code == -1 ? "no answer" : signal_name(-code));
            if (code != ENOSYS) all_enosys = 0;
        }
    }
    if (worked[0]) report("ESCAPED", "%s", worked);
    else if (all_enosys) report("UNAVAILABLE", "%s", refusals);
    else report("BLOCKED", "%s", refusals);
}

/* ---- x32, int80 -------------------------------------------------------- */

static void mode_x32(int argc, char** argv) {
    (void)argc, (void)argv;
#if defined(__x86_64__)
    const long r = syscall(0x40000000L | SYS_getpid);
    if (r == (long)getpid()) report("ESCAPED", "x32 getpid answered %ld", r);
    else if (r < 0 && errno == ENOSYS) report("UNAVAILABLE", "x32 getpid: ENOSYS (no x32 ABI, or refused as unknown)");
    else if (r < 0) report("BLOCKED", "x32 getpid: %s", err_name(errno));
    else report("BLOCKED", "x32 getpid answered %ld, not the pid", r);
#else
    report("UNAVAILABLE", "not x86-64");
#endif
}

/* getpid (20 on i386) through the 32-bit entry from a 64-bit process. A
   kernel without IA32 emulation faults (SIGSEGV, reported by the parent as
   UNAVAILABLE); a seccomp filter that kills reads as SIGSYS. */
static void mode_int80(int argc, char** argv) {
    (void)argc, (void)argv;
#if defined(__x86_64__)
    long r = 20;
    __asm__ volatile("int $0x80" : "+a"(r) : : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
    if (r == (long)getpid()) report("ESCAPED", "int 0x80 getpid answered %ld", r);
    else if (r == -ENOSYS) report("UNAVAILABLE", "int 0x80 getpid: ENOSYS (no IA32 emulation, or refused as unknown)");
    else if (r < 0 && r > -4096) report("BLOCKED", "int 0x80 getpid: %s", err_name((int)-r));
    else report("BLOCKED", "int 0x80 getpid answered %ld, not the pid", r);
#else
    report("UNAVAILABLE", "not x86-64");
#endif
}

/* ---- routes out of a sandbox without namespaces ---------------------------

   ctr-run's no-namespace mode (ctr-run/no_namespaces.hpp) shares the host's
   files, processes and network: these reach what the test made outside the
   sandbox, and only that (the test passes its own file, process, socket). */

/* write-file TARGET: appends to TARGET, a file the test made. */
static void mode_write_file(int argc, char** argv) {
    if (argc < 1) {
        report("BLOCKED", "usage: write-file TARGET");
        return;
    }
    const int e = append_to(AT_FDCWD, argv[0]);
    if (e == 0) report("ESCAPED", "wrote %s", argv[0]);
    else report("BLOCKED", "append to %s: %s", argv[0], err_name(e));
}

static long pid_argument(int argc, char** argv) {
    if (argc < 1) return -1;
    char* end = NULL;
    const long pid = strtol(argv[0], &end, 10);
    return end && *end == '\0' && pid > 1 ? pid : -1;
}

/* signal PID: kill(PID, 0), which asks the kernel every question a real
   signal would (uid, Landlock's scope) and delivers nothing. PID is a
   process the test started. */
static void mode_signal(int argc, char** argv) {
    const long pid = pid_argument(argc, argv);
    if (pid < 0) {
        report("BLOCKED", "usage: signal PID (a process the test started, not 1)");
        return;
    }
    if (kill((pid_t)pid, 0) == 0) report("ESCAPED", "kill(%ld, 0) may signal it", pid);
    else report("BLOCKED", "kill(%ld, 0): %s", pid, err_name(errno));
}

/* ptrace PID: PTRACE_SEIZE, which stops nothing; the kernel detaches when
   this process exits. PID is a process the test started. */
static void mode_ptrace(int argc, char** argv) {
    const long pid = pid_argument(argc, argv);
    if (pid < 0) {
        report("BLOCKED", "usage: ptrace PID (a process the test started, not 1)");
        return;
    }
    if (ptrace(PTRACE_SEIZE, (pid_t)pid, NULL, NULL) == 0) report("ESCAPED", "PTRACE_SEIZE of %ld", pid);
    else refused("PTRACE_SEIZE", errno);
}

/* abstract-connect NAME: connects to the abstract unix socket NAME, which
   the test listens on outside the sandbox. */
static void mode_abstract_connect(int argc, char** argv) {
    if (argc < 1 || strlen(argv[0]) + 1 > sizeof(((struct sockaddr_un*)0)->sun_path)) {
        report("BLOCKED", "usage: abstract-connect NAME");
        return;
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        refused("socket(AF_UNIX)", errno);
        return;
    }
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path + 1, argv[0], strlen(argv[0]));
    const socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[0]));
    if (connect(fd, (struct sockaddr*)&address, length) == 0) report("ESCAPED", "connected to @%s", argv[0]);
    else report("BLOCKED", "connect to @%s: %s", argv[0], err_name(errno));
    close(fd);
}

/* tcp-connect PORT: connects to 127.0.0.1:PORT, where the test listens. */
static void mode_tcp_connect(int argc, char** argv) {
    const long port = argc >= 1 ? strtol(argv[0], NULL, 10) : 0;
    if (port <= 0 || port > 65535) {
        report("BLOCKED", "usage: tcp-connect PORT");
        return;
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        refused("socket(AF_INET)", errno);
        return;
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr*)&address, sizeof address) == 0)
        report("ESCAPED", "connected to 127.0.0.1:%ld", port);
    else report("BLOCKED", "connect to 127.0.0.1:%ld: %s", port, err_name(errno));
    close(fd);
}

/* mount-tmpfs [DIR]: mounts a tmpfs on a directory it makes in DIR (else
   $TMPDIR), and unmounts it at once. */
static void mode_mount_tmpfs(int argc, char** argv) {
    const char* base = argc >= 1 ? argv[0] : getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char point[PATH_MAX];
    snprintf(point, sizeof point, "%s/ctr-escape-mount", base);
    if (mkdir(point, 0700) != 0 && errno != EEXIST) {
        report("BLOCKED", "mkdir %s: %s (nothing to mount on)", point, err_name(errno));
        return;
    }
    if (mount("ctr-escape", point, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k") == 0) {
        report("ESCAPED", "mounted a tmpfs on %s", point);
        umount2(point, MNT_DETACH);
    } else {
        refused("mount tmpfs", errno);
    }
    rmdir(point);
}

/* keyring: asks for the id of the user's keyring, which no namespace
   covers: it is shared with every process of the same uid outside. Reads
   an id, creates and changes nothing. */
static void mode_keyring(int argc, char** argv) {
    (void)argc, (void)argv;
    const long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
    if (id >= 0) report("ESCAPED", "the user keyring is %ld", id);
    else if (errno == EPERM || errno == EACCES || errno == ENOSYS) refused("keyctl(KEYCTL_GET_KEYRING_ID)", errno);
    else report("ESCAPED", "keyctl reached the keyrings: %s", err_name(errno));
}

/* ---- dispatch ----------------------------------------------------------- */

struct mode {
    const char* name;
    void (*run)(int argc, char** argv);
    int forked;               /* run in a child so that a kill reads as BLOCKED */
    const char* if_segfault;  /* UNAVAILABLE reason when the child dies of SIGSEGV */
};

static const struct mode modes[] = {
    {"remount-root", mode_remount_root, 1, NULL},
    {"mknod-mount", mode_mknod_mount, 1, NULL},
    {"open-by-handle", mode_open_by_handle, 1, NULL},
    {"init-fds", mode_init_fds, 0, NULL},
    {"init-environ", mode_init_environ, 1, NULL},
    {"init-cmdline", mode_init_cmdline, 1, NULL},
    {"init-exe", mode_init_exe, 1, NULL},
    {"init-ptrace", mode_init_ptrace, 1, NULL},
    {"init-mem", mode_init_mem, 1, NULL},
    {"euid", mode_euid, 0, NULL},
    {"bpf", mode_bpf, 1, NULL},
    {"perf", mode_perf, 1, NULL},
    {"userfaultfd", mode_userfaultfd, 1, NULL},
    {"set-clock", mode_set_clock, 1, NULL},
    {"proc-mount", mode_proc_mount, 1, NULL},
    {"new-namespaces", mode_new_namespaces, 1, NULL},
    {"x32", mode_x32, 1, NULL},
    {"int80", mode_int80, 1, "int 0x80 faulted (SIGSEGV): no IA32 emulation"},
    {"write-file", mode_write_file, 1, NULL},
    {"signal", mode_signal, 1, NULL},
    {"ptrace", mode_ptrace, 1, NULL},
    {"abstract-connect", mode_abstract_connect, 1, NULL},
    {"tcp-connect", mode_tcp_connect, 1, NULL},
    {"keyring", mode_keyring, 1, NULL},
    {"mount-tmpfs", mode_mount_tmpfs, 1, NULL},
};

static void usage(void) {
    fprintf(stderr, "usage: escape MODE [ARG...]\nmodes:");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; ++i) fprintf(stderr, " %s", modes[i].name);
    fprintf(stderr, "\n");
}

int main(int argc, char** argv) {
    if (argc < 2) {
        usage();
        return 2;
    }
    const struct mode* mode = NULL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; ++i)
        if (strcmp(argv[1], modes[i].name) == 0) mode = &modes[i];
    if (!mode) {
        usage();
        return 2;
    }
    if (!mode->forked) {
        mode->run(argc - 2, argv + 2);
        if (!result_line[0]) report("BLOCKED", "no verdict");
        fputs(result_line, stdout);
        return 0;
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        printf("BLOCKED pipe2: %s\n", err_name(errno));
        return 0;
    }
    const pid_t pid = fork();
    if (pid < 0) {
        printf("BLOCKED fork: %s\n", err_name(errno));
        return 0;
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        mode->run(argc - 2, argv + 2);
        if (!result_line[0]) report("BLOCKED", "no verdict");
        (void)!write(pipe_fds[1], result_line, strlen(result_line));
        _exit(0);
    }
    close(pipe_fds[1]);
    char text[sizeof result_line];
    size_t size = 0;
    for (ssize_t n; size < sizeof text - 1 && (n = read(pipe_fds[0], text + size, sizeof text - 1 - size)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        size += (size_t)n;
    }
    text[size] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (size > 0) fputs(text, stdout);
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV && mode->if_segfault)
        printf("UNAVAILABLE %s\n", mode->if_segfault);
    else if (WIFSIGNALED(status)) printf("BLOCKED killed by %s\n", signal_name(WTERMSIG(status)));
    else printf("BLOCKED the attempt ended with status %d and no verdict\n", WEXITSTATUS(status));
    return 0;
}
