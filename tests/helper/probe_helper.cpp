// The probe helper: tests spawn it and read what it reports from inside the
// child (fds, ids, environment, signals...). One mode per run:
//   probe_helper MODE [ARGS...]
#include <ctr/ctr.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: probe_helper MODE [ARGS]\n"
                 "modes: exit N | raise SIG | fds | env | cwd | ids | pid | sid | umask | rlimit RES\n"
                 "       signals | spew BYTES | cat | sleep SECONDS | ignore-term | alloc MIB | burn MS\n"
                 "       write-fd FD TEXT | die-with-parent-parent | file FILE\n");
    return 2;
}

std::string status_field(const char* name) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind(name, 0) == 0) return line.substr(line.find(':') + 1);
    return {};
}

void print_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) {
        std::perror("opendir /proc/self/fd");
        std::exit(1);
    }
    const int own = dirfd(dir);
    std::vector<int> fds;
    while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        const int fd = std::atoi(entry->d_name);
        if (fd != own) fds.push_back(fd);
    }
    closedir(dir);
    std::sort(fds.begin(), fds.end());
    for (std::size_t i = 0; i < fds.size(); ++i) std::printf("%s%d", i ? " " : "", fds[i]);
    std::printf("\n");
}

// Writes `bytes` to stdout and to stderr, alternating in 64 KiB chunks, so a
// parent that reads only one stream at a time deadlocks.
void spew(std::size_t bytes) {
    std::string chunk(65536, '\0');
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>('a' + i % 26);
    for (std::size_t done = 0; done < bytes;) {
        const std::size_t n = std::min(chunk.size(), bytes - done);
        for (int fd : {1, 2})
            for (std::size_t off = 0; off < n;) {
                const ssize_t w = write(fd, chunk.data() + off, n - off);
                if (w < 0) std::exit(3);
                off += static_cast<std::size_t>(w);
            }
        done += n;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    const auto arg = [&](int i) -> std::string { return i < argc ? argv[i] : ""; };

    if (mode == "exit") return std::atoi(arg(2).c_str());
    if (mode == "raise") {
        const int sig = std::atoi(arg(2).c_str());
        signal(sig, SIG_DFL);
        raise(sig);
        return 100;
    }
    if (mode == "fds") {
        print_fds();
        return 0;
    }
    if (mode == "env") {
        for (char** e = environ; *e; ++e) std::printf("%s\n", *e);
        return 0;
    }
    if (mode == "cwd") {
        char buffer[4096];
        if (!getcwd(buffer, sizeof buffer)) return 1;
        std::printf("%s\n", buffer);
        return 0;
    }
    if (mode == "ids") {
        gid_t groups[256];
        const int n = getgroups(256, groups);
        std::printf("uid=%d gid=%d groups=", static_cast<int>(getuid()), static_cast<int>(getgid()));
        for (int i = 0; i < n; ++i) std::printf("%s%d", i ? "," : "", static_cast<int>(groups[i]));
        std::printf("\n");
        return 0;
    }
    if (mode == "pid") {
        std::printf("pid=%d ppid=%d\n", getpid(), getppid());
        return 0;
    }
    if (mode == "sid") {
        std::printf("pid=%d sid=%d pgid=%d\n", getpid(), getsid(0), getpgid(0));
        return 0;
    }
    if (mode == "umask") {
        const mode_t m = umask(0);
        std::printf("%03o\n", static_cast<unsigned>(m));
        return 0;
    }
    if (mode == "rlimit") {
        rlimit limit{};
        if (getrlimit(std::atoi(arg(2).c_str()), &limit) != 0) return 1;
        std::printf("%llu %llu\n", static_cast<unsigned long long>(limit.rlim_cur),
                    static_cast<unsigned long long>(limit.rlim_max));
        return 0;
    }
    if (mode == "signals") {
        std::printf("blocked=%s ignored=%s caught=%s\n", status_field("SigBlk").c_str() + 1,
                    status_field("SigIgn").c_str() + 1, status_field("SigCgt").c_str() + 1);
        return 0;
    }
    if (mode == "spew") {
        spew(std::strtoull(arg(2).c_str(), nullptr, 10));
        return 0;
    }
    if (mode == "cat") {
        char buffer[65536];
        for (ssize_t n; (n = read(0, buffer, sizeof buffer)) > 0;)
            if (write(1, buffer, static_cast<std::size_t>(n)) != n) return 1;
        return 0;
    }
    if (mode == "sleep") {
        std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(arg(2).c_str())));
        return 0;
    }
    if (mode == "ignore-term") {
        signal(SIGTERM, SIG_IGN);
        std::printf("ready\n");
        std::fflush(stdout);
        for (;;) pause();
    }
    if (mode == "alloc") {
        const std::size_t bytes = std::strtoull(arg(2).c_str(), nullptr, 10) << 20;
        auto* memory = static_cast<volatile char*>(std::malloc(bytes));
        if (!memory) return 1;
        for (std::size_t i = 0; i < bytes; i += 4096) memory[i] = 1;
        std::free(const_cast<char*>(memory));
        return 0;
    }
    if (mode == "burn") {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::atoi(arg(2).c_str()));
        volatile unsigned long x = 0;
        while (std::chrono::steady_clock::now() < until) x = x + 1;
        return 0;
    }
    if (mode == "write-fd") {
        const std::string text = arg(3);
        return write(std::atoi(arg(2).c_str()), text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 1;
    }
    if (mode == "file") {
        std::ifstream in(arg(2));
        std::cout << in.rdbuf();
        return in ? 0 : 1;
    }
    if (mode == "die-with-parent-parent") {
        // Starts a grandchild that must die with this process, reports its
        // pid, and waits to be killed.
        auto grandchild = ctr::process::spawn({argv[0], "sleep", "100"}, {.die_with_parent = true});
        std::printf("%d\n", grandchild.pid());
        std::fflush(stdout);
        for (;;) pause();
    }
    return usage();
}
