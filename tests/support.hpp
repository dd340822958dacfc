#pragma once
// What the tests share: the helper binaries and leak checks.

#include <ctr/ctr.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>

#include <string>
#include <vector>

namespace ctr_test {

// Set by the test main once the process is in a private mount namespace.
extern bool private_mount_namespace;
// Set once the process is in a network namespace of its own, which plays the
// host: veths and published ports live there, never on the real host.
extern bool private_network_namespace;
// Whether the suite started as root in the initial user namespace (not
// root only inside the user namespace the test main made).
extern bool real_root;

// The helper binaries, where the build put them; the rootless lane runs a
// copy of the suite from elsewhere and says where through the environment.
inline std::string from_environment_or(const char* variable, const char* built) {
    const char* value = std::getenv(variable);
    return value && *value ? value : built;
}
inline const std::string probe_helper = from_environment_or("CTR_TEST_PROBE_HELPER", CTR_PROBE_HELPER);
inline const std::string noop_static = from_environment_or("CTR_TEST_NOOP_STATIC", CTR_NOOP_STATIC);
inline const std::string make_rootfs = from_environment_or("CTR_TEST_MAKE_ROOTFS", CTR_MAKE_ROOTFS);

// The fds this process has open now.
inline std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return fds;
    const int own = dirfd(dir);
    while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        const int fd = std::stoi(entry->d_name);
        if (fd != own) fds.push_back(fd);
    }
    closedir(dir);
    return fds;
}

// Whether this process has any child, running or zombie (without reaping it).
inline bool has_children() {
    siginfo_t info{};
    return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// A temporary directory that removes itself and everything in it (a
// rootfs a test built there too), unless something is still mounted below
// it: then removing could reach through a bind mount into the host's files,
// so it is left, with a line saying so.
struct temp_dir {
    std::string path;
    temp_dir() {
        char pattern[] = "/tmp/ctr-test-XXXXXX";
        path = mkdtemp(pattern);
    }
    ~temp_dir() {
        std::ifstream mountinfo("/proc/self/mountinfo");
        for (std::string line; std::getline(mountinfo, line);) {
            std::istringstream fields(line);
            std::string id, parent, device, root, mount_point;
            fields >> id >> parent >> device >> root >> mount_point;
            if (mount_point.rfind(path + "/", 0) == 0 || mount_point == path) {
                std::fprintf(stderr, "temp_dir: %s still has %s mounted; left in place\n", path.c_str(),
                             mount_point.c_str());
                return;
            }
        }
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

// Why this process cannot make cgroups (no cgroup file system, no write
// access to its own cgroup), found once by making and removing a plain
// group; nothing when it can.
inline const std::optional<ctr::error>& cgroup_blocker() {
    static const std::optional<ctr::error> reason = []() -> std::optional<ctr::error> {
        try {
            ctr::cgroup::group g;
            g.remove();
            return std::nullopt;
        } catch (const ctr::error& e) {
            return e;
        }
    }();
    return reason;
}

// Skips a test that needs the network namespace the test main made (it
// plays the host, so no packet reaches a real interface).
#define CTR_SKIP_WITHOUT_NETWORK_NAMESPACE()   \
    if (!ctr_test::private_network_namespace) \
    GTEST_SKIP() << "the test main made no network namespace to play the host"

// One TCP exchange: connects to address:port, sends `text`, half-closes and
// reads until the far end closes. Nothing when no connection could be made.
inline std::optional<std::string> tcp_exchange(in_addr address, int port, const std::string& text) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr = address;
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        close(s);
        return std::nullopt;
    }
    std::string reply;
    if (write(s, text.data(), text.size()) == static_cast<ssize_t>(text.size())) {
        shutdown(s, SHUT_WR);
        char buffer[4096];
        for (ssize_t n; (n = read(s, buffer, sizeof buffer)) > 0;) reply.append(buffer, static_cast<std::size_t>(n));
    }
    close(s);
    return reply;
}

// Reads `fd` up to and including the first newline (a child's stdout).
inline std::string read_line_of(int fd) {
    std::string line;
    char c = 0;
    while (read(fd, &c, 1) == 1) {
        line += c;
        if (c == '\n') break;
    }
    return line;
}

inline std::vector<std::string> helper(std::vector<std::string> args) {
    args.insert(args.begin(), probe_helper);
    return args;
}

}  // namespace ctr_test
