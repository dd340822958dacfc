// The probe helper: tests spawn it and read what it reports from inside the
// child (fds, ids, environment, signals...). One mode per run:
//   probe_helper MODE [ARGS...]
#include <ctr/ctr.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: probe_helper MODE [ARGS]\n"
                 "modes: exit N | raise SIG | fds | env | cwd | ids | pid | sid | umask | rlimit RES\n"
                 "       signals | spew BYTES | cat | sleep SECONDS | ignore-term | alloc MIB | burn MS | burn-cpu MS\n"
                 "       write-fd FD TEXT | die-with-parent-parent | file FILE\n"
                 "       after-stdin MODE ARGS | fork-bomb MAX | double-fork-sleep | affinity\n"
                 "       make-cgroup-and-hang PREFIX | move-to-leaf | make-group-here [move]\n"
                 "       ns KIND | hostname | netdevs | clocks | mount-proc-and-list | reap-check | trap-term | ctty | terminal [wait-winch]\n"
                 "       addresses | tcp-echo PORT | tcp-send ADDRESS PORT TEXT | tcp-send-gateway PORT TEXT\n"
                 "       tcp-ask ADDRESS PORT TEXT | tcp-peer PORT COUNT | loopback-escape PORT\n"
                 "       udp-echo PORT | create-veth\n");
    return 2;
}

// The default route's device and gateway, from /proc/net/route.
std::optional<std::pair<std::string, in_addr>> default_route() {
    std::ifstream routes("/proc/net/route");
    std::string line;
    std::getline(routes, line);
    while (std::getline(routes, line)) {
        char device[IFNAMSIZ + 1] = {};
        unsigned destination = 0, gateway = 0;
        if (std::sscanf(line.c_str(), "%16s %x %x", device, &destination, &gateway) == 3 && destination == 0)
            return std::make_pair(std::string(device), in_addr{gateway});
    }
    return std::nullopt;
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
// Prints what socket `s` receives until the far end closes.
void print_until_closed(int s) {
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(s, buffer, sizeof buffer);
        if (n <= 0) break;
        std::fwrite(buffer, 1, static_cast<std::size_t>(n), stdout);
    }
}

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

// In a sanitizer build the helper carries LeakSanitizer, whose check at exit
// stops the process's threads with ptrace. Inside a sandbox whose seccomp
// profile refuses ptrace (ctr-run's default) that check fails and turns a
// clean exit into status 1, and the tests judge the helper by its status. The
// environment's ASAN_OPTIONS still wins where one reaches the helper.
extern "C" const char* __asan_default_options();
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }

// A TCP socket listening on PORT (every address), or -1 with the reason
// on stderr; says "listening" once it is, so that a test knows when to
// connect.
static int listen_on(const char* port) {
    const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
    if (bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(server, 8) != 0) {
        std::perror("bind/listen");
        return -1;
    }
    std::printf("listening\n");
    std::fflush(stdout);
    return server;
}

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    // after-stdin MODE [ARGS...]: waits for one line on stdin, then runs
    // MODE, so that a test can put the process into a cgroup before it works.
    if (argc >= 3 && std::strcmp(argv[1], "after-stdin") == 0) {
        char c = 0;
        while (read(0, &c, 1) == 1 && c != '\n') {
        }
        argv[1] = argv[0];
        ++argv;
        --argc;
    }
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
    if (mode == "ns") {
        // The inode that identifies this process's namespace of one kind.
        struct stat st {};
        if (stat(("/proc/self/ns/" + arg(2)).c_str(), &st) != 0) return 1;
        std::printf("%llu\n", static_cast<unsigned long long>(st.st_ino));
        return 0;
    }
    if (mode == "hostname") {
        utsname name{};
        uname(&name);
        std::printf("%s %s\n", name.nodename, name.domainname);
        return 0;
    }
    if (mode == "netdevs") {
        // Interfaces of this network namespace, with whether each is up.
        struct if_nameindex* list = if_nameindex();
        const int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        for (auto* i = list; i && i->if_name; ++i) {
            ifreq request{};
            std::strncpy(request.ifr_name, i->if_name, IFNAMSIZ - 1);
            ioctl(probe, SIOCGIFFLAGS, &request);
            std::printf("%s:%s\n", i->if_name, (request.ifr_flags & IFF_UP) ? "up" : "down");
        }
        if_freenameindex(list);
        return 0;
    }
    if (mode == "addresses") {
        // IPv4 addresses ("eth0 10.0.0.2/30 up mtu 1500"), then the default
        // route ("default via 10.0.0.1 dev eth0") from /proc/net/route.
        ifaddrs* list = nullptr;
        getifaddrs(&list);
        const int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        for (auto* i = list; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
            char address[INET_ADDRSTRLEN] = {};
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, address, sizeof address);
            const auto mask = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
            ifreq request{};
            std::strncpy(request.ifr_name, i->ifa_name, IFNAMSIZ - 1);
            ioctl(probe, SIOCGIFMTU, &request);
            std::printf("%s %s/%d %s mtu %d\n", i->ifa_name, address, __builtin_popcount(mask),
                        (i->ifa_flags & IFF_UP) ? "up" : "down", request.ifr_mtu);
        }
        freeifaddrs(list);
        if (const auto route = default_route()) std::printf("default via %s dev %s\n", inet_ntoa(route->second), route->first.c_str());
        return 0;
    }
    if (mode == "addresses6") {
        // IPv6 addresses other than link-local ones ("eth0 fd63:7472::2/64"
        // and " tentative" while duplicate address detection runs) from
        // /proc/net/if_inet6, then the default route ("default6 via
        // fd63:7472::1 dev eth0") from /proc/net/ipv6_route.
        const auto text6 = [](const std::string& hex) {
            in6_addr address{};
            for (std::size_t i = 0; i < 16 && 2 * i + 1 < hex.size(); ++i)
                address.s6_addr[i] = static_cast<unsigned char>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
            char text[INET6_ADDRSTRLEN] = {};
            inet_ntop(AF_INET6, &address, text, sizeof text);
            return std::string(text);
        };
        std::ifstream addresses("/proc/net/if_inet6");
        std::string hex, index, prefix, scope, flags, name;
        while (addresses >> hex >> index >> prefix >> scope >> flags >> name) {
            if (std::stoul(scope, nullptr, 16) == 0x20) continue;  // link-local
            std::printf("%s %s/%lu%s\n", name.c_str(), text6(hex).c_str(), std::stoul(prefix, nullptr, 16),
                        (std::stoul(flags, nullptr, 16) & 0x40) ? " tentative" : "");
        }
        std::ifstream routes("/proc/net/ipv6_route");
        std::string destination, length, source, source_length, next_hop, metric, references, use, route_flags, device;
        while (routes >> destination >> length >> source >> source_length >> next_hop >> metric >> references >> use >>
               route_flags >> device)
            if (length == "00" && destination == std::string(32, '0') && next_hop != std::string(32, '0'))
                std::printf("default6 via %s dev %s\n", text6(next_hop).c_str(), device.c_str());
        return 0;
    }
    if ((mode == "tcp6-send" && argc >= 5) || (mode == "tcp6-peer" && argc >= 4)) {
        // tcp6-send ADDRESS PORT TEXT: connects over IPv6, sends TEXT,
        // half-closes and prints the reply. tcp6-peer PORT COUNT: tcp-peer on
        // an IPv6 socket listening on [::] (IPv4 clients too, as
        // ::ffff:a.b.c.d).
        const int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 address{};
        address.sin6_family = AF_INET6;
        if (mode == "tcp6-send") {
            address.sin6_port = htons(static_cast<std::uint16_t>(std::atoi(argv[3])));
            if (inet_pton(AF_INET6, argv[2], &address.sin6_addr) != 1) return 2;
            if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
                std::printf("connect: %s\n", std::strerror(errno));
                return 1;
            }
            if (write(s, argv[4], std::strlen(argv[4])) < 0) return 1;
            shutdown(s, SHUT_WR);
            print_until_closed(s);
            return 0;
        }
        const int on = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        address.sin6_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
        if (bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(s, 8) != 0) {
            std::perror("bind/listen");
            return 1;
        }
        std::printf("listening\n");
        std::fflush(stdout);
        for (int served = 0; served < std::atoi(argv[3]); ++served) {
            sockaddr_in6 peer{};
            socklen_t length = sizeof peer;
            const int connection = accept(s, reinterpret_cast<sockaddr*>(&peer), &length);
            if (connection < 0) return 1;
            for (char c = 0; c != '\n' && read(connection, &c, 1) == 1;) {
            }
            char text[INET6_ADDRSTRLEN] = {};
            inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
            const std::string line = std::string("saw ") + text + "\n";
            std::printf("%s", line.c_str());
            std::fflush(stdout);
            if (write(connection, line.data(), line.size()) < 0) return 1;
            close(connection);
        }
        return 0;
    }
    if (mode == "tcp-echo" && argc >= 3) {
        // Serves one connection on PORT: echoes until EOF. Says "listening"
        // first, so that the test knows when to connect.
        const int server = listen_on(argv[2]);
        if (server < 0) return 1;
        const int connection = accept(server, nullptr, nullptr);
        char buffer[65536];
        for (;;) {
            const ssize_t n = read(connection, buffer, sizeof buffer);
            if (n <= 0) break;
            if (write(connection, buffer, static_cast<std::size_t>(n)) != n) break;
        }
        return 0;
    }
    if (mode == "tcp-peer" && argc >= 4) {
        // Serves COUNT connections on PORT, one after the other: reads a line
        // and answers it with "saw ADDRESS" (the client's address as this side sees it) and
        // prints the same, as a server's log would. Says "listening" first.
        const int server = listen_on(argv[2]);
        if (server < 0) return 1;
        for (int served = 0; served < std::atoi(argv[3]); ++served) {
            sockaddr_in peer{};
            socklen_t length = sizeof peer;
            const int connection = accept(server, reinterpret_cast<sockaddr*>(&peer), &length);
            if (connection < 0) return 1;
            // The client's line first: closing with unread bytes would reset
            // the connection, and the answer could be lost with it.
            for (char c = 0; c != '\n' && read(connection, &c, 1) == 1;) {
            }
            const std::string line = std::string("saw ") + inet_ntoa(peer.sin_addr) + "\n";
            std::printf("%s", line.c_str());
            std::fflush(stdout);
            if (write(connection, line.data(), line.size()) < 0) return 1;
            close(connection);
        }
        return 0;
    }
    if (mode == "loopback-escape" && argc >= 3) {
        // What a sandbox's root can do to reach the host's loopback through
        // its veth (CVE-2020-8558): route_localnet on eth0 lets 127.0.0.1
        // leave by it, and with lo's address gone the default route takes
        // it, to the host end. Prints the host's answer, or why none came.
        {
            std::ofstream localnet("/proc/sys/net/ipv4/conf/eth0/route_localnet");
            localnet << "1\n";
            if (!localnet.flush()) std::printf("route_localnet: %s\n", std::strerror(errno));
        }
        // Without its address, lo's local routes go, and 127.0.0.1 takes the default route.
        try {
            namespace d = ctr::net::detail;
            auto netlink = d::rtnetlink::open();
            d::netlink_message m(RTM_DELADDR, 0);
            ifaddrmsg h{};
            h.ifa_family = AF_INET;
            h.ifa_prefixlen = 8;
            h.ifa_index = static_cast<unsigned>(d::interface_index("lo"));
            m.add_header(h);
            const in_addr loopback{htonl(INADDR_LOOPBACK)};
            m.add_attribute(IFA_LOCAL, &loopback, sizeof loopback);
            if (const long r = netlink.request(m); r < 0)
                std::printf("deleting 127.0.0.1: %s\n", std::strerror(static_cast<int>(-r)));
        } catch (const std::exception& e) {
            std::printf("deleting 127.0.0.1: %s\n", e.what());
        }
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const timeval limit{3, 0};  // a dropped SYN is retried for minutes otherwise
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            std::printf("connect: %s\n", std::strerror(errno));
            return 1;
        }
        if (write(s, "hi\n", 3) != 3) return 1;
        print_until_closed(s);
        return 0;
    }
    if ((mode == "tcp-send" && argc >= 5) || (mode == "tcp-send-gateway" && argc >= 4)) {
        // Connects, sends TEXT, shuts down writing and prints the reply.
        // tcp-send-gateway connects to the default route's gateway.
        sockaddr_in address{};
        address.sin_family = AF_INET;
        const char* text = argv[argc - 1];
        address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[argc - 2])));
        if (mode == "tcp-send") {
            inet_pton(AF_INET, argv[2], &address.sin_addr);
        } else {
            if (const auto route = default_route()) address.sin_addr = route->second;
        }
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            std::printf("connect: %s\n", std::strerror(errno));
            return 1;
        }
        if (write(s, text, std::strlen(text)) < 0) return 1;
        shutdown(s, SHUT_WR);
        print_until_closed(s);
        return 0;
    }
    // tcp-bind PORT / tcp-connect PORT: binds or connects a TCP socket
    // on 127.0.0.1:PORT and prints "ok" or why not, for Landlock's port rules.
    if ((mode == "tcp-bind" || mode == "tcp-connect") && argc >= 3) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int r = mode == "tcp-bind" ? bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address)
                                         : connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address);
        std::printf("%s\n", r == 0 ? "ok" : std::strerror(errno));
        return 0;
    }
    // abstract-connect NAME: connects to the abstract unix socket "@NAME"
    // and prints "ok" or why not, for Landlock's scopes.
    if (mode == "abstract-connect" && argc >= 3) {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        const std::string name = argv[2];
        std::memcpy(address.sun_path + 1, name.data(), std::min(name.size(), sizeof address.sun_path - 1));
        const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        std::printf("%s\n", connect(s, reinterpret_cast<sockaddr*>(&address), length) == 0 ? "ok" : std::strerror(errno));
        return 0;
    }
    if (mode == "tcp-ask" && argc >= 5) {
        // Connects to ADDRESS:PORT, sends TEXT and a newline and prints the
        // reply, read until the far end closes. Unlike tcp-send it does not
        // half-close first: pasta 2023_03_09 then never passes the far
        // end's close on.
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[3])));
        inet_pton(AF_INET, argv[2], &address.sin_addr);
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            std::printf("connect: %s\n", std::strerror(errno));
            return 1;
        }
        const std::string line = std::string(argv[4]) + "\n";
        if (write(s, line.data(), line.size()) < 0) return 1;
        print_until_closed(s);
        return 0;
    }
    if (mode == "udp-echo" && argc >= 3) {
        // Answers every datagram on PORT with "got " and what it said.
        const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
        if (bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            std::perror("bind");
            return 1;
        }
        for (;;) {
            char buffer[2048];
            sockaddr_in from{};
            socklen_t length = sizeof from;
            const ssize_t n = recvfrom(s, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &length);
            if (n < 0) return 1;
            const std::string reply = "got " + std::string(buffer, static_cast<std::size_t>(n));
            sendto(s, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), length);
        }
    }
    if (mode == "create-veth") {
        // Tries to make a veth pair from here into a fresh child's network
        // namespace; prints the error (a process without CAP_NET_ADMIN over
        // this namespace must be refused with the reason).
        try {
            // Named, not a designated-initializer temporary: g++ 12 at -O3
            // warns (wrongly) that the temporary's strings may be used
            // uninitialized.
            ctr::process::options options;
            options.network = ctr::net::veth{};
            auto child = ctr::process::spawn({"/bin/true"}, options);
            child.wait();
            std::printf("created\n");
        } catch (const ctr::error& e) {
            std::printf("%s\n", e.what());
        }
        return 0;
    }
    if (mode == "clocks") {
        timespec monotonic{}, boottime{};
        clock_gettime(CLOCK_MONOTONIC, &monotonic);
        clock_gettime(CLOCK_BOOTTIME, &boottime);
        std::printf("%lld %lld\n", static_cast<long long>(monotonic.tv_sec), static_cast<long long>(boottime.tv_sec));
        return 0;
    }
    if (mode == "mount-proc-and-list") {
        // Needs its own mount namespace: a fresh /proc for its pid namespace.
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
            std::perror("mount /proc");
            return 1;
        }
        DIR* dir = opendir("/proc");
        std::vector<int> pids;
        while (dirent* entry = dir ? readdir(dir) : nullptr)
            if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9') pids.push_back(std::atoi(entry->d_name));
        if (dir) closedir(dir);
        std::sort(pids.begin(), pids.end());
        for (std::size_t i = 0; i < pids.size(); ++i) std::printf("%s%d", i ? " " : "", pids[i]);
        std::printf("\n");
        return 0;
    }
    if (mode == "reap-check") {
        // Leaves an orphan for pid 1 to reap, then counts zombies in a fresh
        // /proc (needs its own pid and mount namespaces).
        if (mount("proc", "/proc", "proc", 0, nullptr) != 0) return 1;
        const pid_t middle = fork();
        if (middle == 0) {
            if (fork() == 0) _exit(0);  // the orphan
            _exit(0);
        }
        waitpid(middle, nullptr, 0);
        usleep(300 * 1000);
        int zombies = 0;
        DIR* dir = opendir("/proc");
        while (dirent* entry = dir ? readdir(dir) : nullptr) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
            std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
            std::string line;
            std::getline(stat, line);
            const auto close = line.rfind(')');
            if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') ++zombies;
        }
        if (dir) closedir(dir);
        std::printf("zombies=%d\n", zombies);
        return 0;
    }
    if (mode == "trap-term") {
        // Says it is ready, then exits 7 on SIGTERM.
        signal(SIGTERM, [](int) { _exit(7); });
        std::printf("ready\n");
        std::fflush(stdout);
        for (;;) pause();
    }
    if (mode == "ctty") {
        // Whether stdin is this process's controlling terminal, with this
        // process group in the foreground.
        const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
        std::printf("ctty=%s foreground=%s\n", tty >= 0 ? "yes" : "no", tcgetpgrp(0) == getpgrp() ? "yes" : "no");
        return 0;
    }
    if (mode == "terminal") {
        // What a program sees of its terminal: the name of its stdin, which
        // streams are terminals, whether it is the controlling terminal of
        // this session (tcgetsid) with this group in the foreground, the
        // window size and who owns the terminal's node.
        char name[256] = "none";
        if (ttyname_r(0, name, sizeof name) != 0) std::snprintf(name, sizeof name, "none");
        winsize size{};
        const bool sized = ioctl(0, TIOCGWINSZ, &size) == 0;
        const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
        struct stat node {};
        const bool owned = fstat(0, &node) == 0;
        std::printf("tty=%s streams=%d%d%d ctty=%s session=%s foreground=%s size=%dx%d owner=%ld:%ld\n", name,
                    isatty(0), isatty(1), isatty(2), tty >= 0 ? "yes" : "no",
                    tcgetsid(0) == getsid(0) && getsid(0) == getpid() ? "own" : "other",
                    tcgetpgrp(0) == getpgrp() ? "yes" : "no", sized ? size.ws_row : -1, sized ? size.ws_col : -1,
                    owned ? static_cast<long>(node.st_uid) : -1L, owned ? static_cast<long>(node.st_gid) : -1L);
        std::fflush(stdout);
        if (arg(2) == "wait-winch") {
            // Until the window changes: then the new size.
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGWINCH);
            sigprocmask(SIG_BLOCK, &set, nullptr);
            std::printf("ready\n");
            std::fflush(stdout);
            int got = 0;
            sigwait(&set, &got);
            ioctl(0, TIOCGWINSZ, &size);
            std::printf("winch size=%dx%d\n", size.ws_row, size.ws_col);
        }
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
    if (mode == "burn-cpu") {
        // Runs until it has used MS of CPU time, however long that takes
        // on a busy machine.
        const double until = std::atof(arg(2).c_str()) / 1000.0;
        volatile unsigned long x = 0;
        for (;;) {
            timespec used{};
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
            if (static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) / 1e9 >= until) return 0;
            for (int i = 0; i < 100000; ++i) x = x + 1;
        }
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
    // open PATH [rw]: opens a file (read-only, or read-write) and prints
    // "ok" or the errno, for device rules.
    if (mode == "open") {
        const int fd = open(arg(2).c_str(), (arg(3) == "rw" ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        std::printf("%s\n", fd >= 0 ? "ok" : std::to_string(errno).c_str());
        return 0;
    }
    // absolute-group PATH: run in a new mount and cgroup namespace whose
    // root is a test group. Mounts again the cgroup hierarchies whose root
    // lies outside the namespace (mountinfo shows "/.."), so that they start
    // at the namespace's root, makes a group at the absolute PATH there,
    // prints its directories as "dir D" lines and leaves it (release()).
    if (mode == "absolute-group") {
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return std::perror("make / private"), 2;
        std::ifstream mountinfo("/proc/self/mountinfo");
        std::vector<std::pair<std::string, std::string>> again;  // mount point, v1 controllers ("" for cgroup2)
        for (std::string line; std::getline(mountinfo, line);) {
            std::istringstream fields(line);
            std::string id, parent, device, root, point, word;
            fields >> id >> parent >> device >> root >> point;
            while (fields >> word && word != "-") {
            }
            std::string type, source, super;
            fields >> type >> source >> super;
            if ((type != "cgroup" && type != "cgroup2") || root.rfind("/..", 0) != 0) continue;
            std::string controllers;
            if (type == "cgroup") {
                std::istringstream opts(super);
                for (std::string o; std::getline(opts, o, ',');)
                    if (o != "rw" && o != "ro" && o.find('=') == std::string::npos)
                        controllers += (controllers.empty() ? "" : ",") + o;
            }
            again.emplace_back(point, type == "cgroup" ? controllers : "");
        }
        for (const auto& [point, controllers] : again) {
            if (umount2(point.c_str(), MNT_DETACH) != 0) return std::perror(point.c_str()), 2;
            const bool v2 = controllers.empty();
            if (mount(v2 ? "cgroup2" : "cgroup", point.c_str(), v2 ? "cgroup2" : "cgroup", 0,
                      v2 ? nullptr : controllers.c_str()) != 0)
                return std::perror(point.c_str()), 2;
        }
        try {
            // No controllers to hand down: on v2 the namespace's root (the
            // test group, where this process is) could not enable any.
            ctr::cgroup::group group({.path = arg(2), .accounting = false});
            for (const auto& dir : group.paths()) std::cout << "dir " << dir << "\n";
            group.release();
        } catch (const std::exception& e) {
            std::cout << "error " << e.what() << "\n";
            return 3;
        }
        return 0;
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
    if (mode == "fork-bomb") {
        // Forks waiting children until fork fails, at most MAX of them, and
        // reports "forked N ERRNO-NAME"; then kills and reaps them.
        const long most = std::atol(arg(2).c_str()) > 0 ? std::atol(arg(2).c_str()) : 200;
        std::vector<pid_t> children;
        int failure = 0;
        while (static_cast<long>(children.size()) < most) {
            const pid_t pid = fork();
            if (pid == 0)
                for (;;) pause();
            if (pid < 0) {
                failure = errno;
                break;
            }
            children.push_back(pid);
        }
        std::printf("forked %zu %s\n", children.size(),
                    failure == 0 ? "none" : failure == EAGAIN ? "EAGAIN" : std::strerror(failure));
        for (pid_t c : children) kill(c, SIGKILL);
        for (pid_t c : children) waitpid(c, nullptr, 0);
        return 0;
    }
    if (mode == "double-fork-sleep") {
        // Leaves behind a grandchild in a session of its own, whose parent
        // has exited, and prints its pid.
        int fds[2];
        if (pipe(fds) != 0) return 1;
        const pid_t middle = fork();
        if (middle == 0) {
            setsid();
            const pid_t grandchild = fork();
            if (grandchild == 0) {
                const int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                close(fds[0]);
                close(fds[1]);
                for (;;) pause();
            }
            dprintf(fds[1], "%d\n", grandchild);
            _exit(0);
        }
        close(fds[1]);
        char buffer[32] = {};
        const ssize_t n = read(fds[0], buffer, sizeof buffer - 1);
        waitpid(middle, nullptr, 0);
        if (n <= 0) return 1;
        std::printf("%s", buffer);
        return 0;
    }
    if (mode == "affinity") {
        // The CPUs this process may run on: "0,1".
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
        bool first = true;
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &set)) {
                std::printf("%s%d", first ? "" : ",", cpu);
                first = false;
            }
        std::printf("\n");
        return 0;
    }
    if (mode == "make-cgroup-and-hang") {
        // Makes a cgroup with prefix PREFIX, puts a waiting child in it,
        // prints "NAME CHILD-PID" and waits to be killed, so that the group
        // outlives it.
        ctr::cgroup::group group({.prefix = arg(2)});
        const pid_t child = fork();
        if (child == 0)
            for (;;) pause();
        group.attach(child);
        std::printf("%s %d\n", group.name().c_str(), child);
        std::fflush(stdout);
        for (;;) pause();
    }
    if (mode == "make-group-here") {
        // Makes a group that needs the pids controller below this process's
        // own cgroup ("move": with move_caller_to_leaf), and prints
        // "ok GROUP-DIR" and this process's v2 cgroup, or "error ERRNO WHAT".
        try {
            ctr::cgroup::group group({.limits = {.pids_max = 8}, .move_caller_to_leaf = arg(2) == "move"});
            std::ifstream own("/proc/self/cgroup");
            std::string line, v2;
            while (std::getline(own, line))
                if (line.rfind("0::", 0) == 0) v2 = line.substr(3);
            std::printf("ok %s\n%s\n", group.path().c_str(), v2.c_str());
            group.remove();
            return 0;
        } catch (const ctr::error& e) {
            std::printf("error %d %s\n", e.code().value(), e.what());
            return 3;
        }
    }
    if (mode == "move-to-leaf") {
        // Moves itself into a ctr-leaf cgroup, makes a group on the v2 side,
        // and prints the leaf's directory and the group's.
        const std::string leaf = ctr::cgroup::move_self_to_leaf();
        ctr::cgroup::group group({.unified_only = true});
        std::printf("%s\n%s\n", leaf.c_str(), group.path().c_str());
        group.remove();
        return 0;
    }
    return usage();
}
