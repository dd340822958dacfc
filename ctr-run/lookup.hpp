#pragma once
// What the run command reads from the system before the sandbox starts, as
// the sandbox will see it: its /etc/passwd, /etc/group, /etc/hosts and
// /etc/resolv.conf (the --overlay layers', the --rootfs's, or the host's),
// the CPUs there are, --env-file files, and the lock that keeps a --name to
// one run at a time. Nothing here writes into the sandbox's files.

#include "flags.hpp"

#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_run {

// The directories a path inside the sandbox is looked up in, uppermost
// first: the overlay's layers and the rootfs below them, or the host's "/".
inline std::vector<std::string> sandbox_layers(const config& c) {
    std::vector<std::string> layers = c.overlay;
    if (c.rootfs) layers.push_back(*c.rootfs);
    if (layers.empty()) layers.emplace_back("");  // the host's root: "" + "/etc/passwd"
    return layers;
}

// The text of a small file as the sandbox sees it, or nothing when no layer
// has it. In a rootfs or a layer the last component is not followed when it
// is a symlink: the link points into the sandbox's tree, not the host's.
inline std::optional<std::string> read_sandbox_file(const config& c, const std::string& path) {
    for (const auto& layer : sandbox_layers(c)) {
        const std::string full = layer + path;
        const int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (layer.empty() ? 0 : O_NOFOLLOW));
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR) continue;
            return std::nullopt;
        }
        const ctr::unique_fd owned(fd);
        std::string text;
        char buffer[4096];
        for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0 && text.size() < (1 << 22);)
            text.append(buffer, static_cast<std::size_t>(n));
        return text;
    }
    return std::nullopt;
}

// Where a name was looked up, for messages.
inline std::string sandbox_file_name(const config& c, const std::string& path) {
    if (!c.overlay.empty()) return path + " of the --overlay layers" + (c.rootfs ? " and the --rootfs" : "");
    if (c.rootfs) return path + " of the --rootfs (" + *c.rootfs + path + ")";
    return path + " (the host's, which the sandbox sees)";
}

// The colon-separated fields of each line of a passwd or group file.
inline std::vector<std::vector<std::string>> colon_records(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> fields;
        for (auto f : split(line, ':')) fields.emplace_back(f);
        records.push_back(std::move(fields));
    }
    return records;
}

// Who the command runs as: -u resolved in the sandbox's /etc/passwd and
// /etc/group, with the user's groups, --group-add, and HOME.
struct identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string home;
    bool user_given = false;
};

inline identity resolve_identity(const config& c) {
    const auto passwd = colon_records(read_sandbox_file(c, "/etc/passwd").value_or(""));
    const auto group = colon_records(read_sandbox_file(c, "/etc/group").value_or(""));
    const auto numeric = [](const std::string& s) {
        return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
    };
    const auto number = [](const std::string& s) { return static_cast<std::uint32_t>(std::stoul(s)); };
    const auto find_group = [&](const std::string& flag, const std::string& name) -> gid_t {
        if (numeric(name)) return number(name);
        for (const auto& g : group)
            if (g.size() >= 3 && g[0] == name && numeric(g[2])) return number(g[2]);
        bad_value(flag, "no group '" + name + "' in " + sandbox_file_name(c, "/etc/group"));
    };

    identity id;
    const std::vector<std::string>* entry = nullptr;
    const std::string user = c.user ? c.user->user : "0";
    id.user_given = c.user.has_value();
    for (const auto& p : passwd) {
        if (p.size() < 6 || !numeric(p[2]) || !numeric(p[3])) continue;
        if (numeric(user) ? number(p[2]) == number(user) : p[0] == user) {
            entry = &p;
            break;
        }
    }
    if (!numeric(user) && !entry)
        bad_value("--user", "no user '" + user + "' in " + sandbox_file_name(c, "/etc/passwd"));
    id.uid = entry ? number((*entry)[2]) : number(user);
    id.gid = entry ? number((*entry)[3]) : 0;
    // Docker's HOME: the user's home directory, else / (/root for root).
    id.home = entry && !(*entry)[5].empty() ? (*entry)[5] : id.uid == 0 ? "/root" : "/";
    if (c.user && !c.user->group.empty()) id.gid = find_group("--user", c.user->group);
    if (entry && c.user) {
        // The groups that list the user as a member, as login (and Docker) do.
        for (const auto& g : group) {
            if (g.size() < 4 || !numeric(g[2])) continue;
            for (auto member : split(g[3], ','))
                if (member == (*entry)[0] && number(g[2]) != id.gid) id.groups.push_back(number(g[2]));
        }
    }
    for (const auto& name : c.group_add) id.groups.push_back(find_group("--group-add", name));
    return id;
}

// The CPUs online (/sys/devices/system/cpu/online), or nothing when that
// cannot be read.
inline std::optional<std::set<unsigned>> online_cpus() {
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string text;
    if (!std::getline(in, text) || text.empty()) return std::nullopt;
    try {
        return parse_cpu_list("online", text);
    } catch (const usage_error&) {
        return std::nullopt;
    }
}

// The CPUs ctr-run's own cpuset lets it use (the sandbox's group is below
// it, so it cannot have more), or the CPUs online where that cannot be read.
inline std::optional<std::set<unsigned>> available_cpus() {
    std::ifstream cgroups("/proc/self/cgroup");
    for (std::string line; std::getline(cgroups, line);) {
        const auto first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        const std::string path = line.substr(second + 1);
        std::string file;
        if (controllers.empty()) file = "/sys/fs/cgroup" + path + "/cpuset.cpus.effective";
        else if ((',' + controllers + ',').find(",cpuset,") != std::string::npos)
            file = "/sys/fs/cgroup/cpuset" + path + "/cpuset.effective_cpus";
        else continue;
        std::ifstream in(file);
        std::string text;
        if (std::getline(in, text) && !text.empty()) {
            try {
                return parse_cpu_list("cpuset", text);
            } catch (const usage_error&) {
            }
        }
    }
    return online_cpus();
}

// --env-file: KEY=VALUE lines; blank lines and # comments are skipped; a
// KEY alone passes the caller's KEY (as -e KEY), or nothing when it is unset.
inline std::vector<std::pair<std::string, std::string>> read_env_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) bad_value("--env-file", "'" + path + "': " + std::strerror(errno));
    std::vector<std::pair<std::string, std::string>> out;
    int number = 0;
    for (std::string line; std::getline(in, line);) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        line.erase(0, start);
        const auto eq = line.find('=');
        const std::string key = line.substr(0, eq);
        if (key.empty() || key.find_first_of(" \t") != std::string::npos)
            bad_value("--env-file", path + ":" + std::to_string(number) + ": '" + line + "' is not KEY=VALUE");
        if (eq != std::string::npos) out.emplace_back(key, line.substr(eq + 1));
        else if (const char* value = std::getenv(key.c_str())) out.emplace_back(key, value);
    }
    return out;
}

// --name: a lock file per name, held (flock) while the run lasts and removed
// at its end. The lock dies with the process, so a killed ctr-run frees its
// name at once.
class name_lock {
public:
    explicit name_lock(const std::string& name) {
        const std::string dir = directory();
        if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw ctr::error(ctr::step::prepare, errno, dir, "--name's lock directory");
        struct stat st {};
        if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            throw ctr::error(ctr::step::prepare, EPERM, dir, "--name's lock directory (not this user's own)");
        path_ = dir + "/" + name + ".lock";
        for (;;) {
            ctr::unique_fd fd(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
            if (!fd) throw ctr::error(ctr::step::prepare, errno, path_, "--name's lock");
            if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
                char pid[32] = {};
                [[maybe_unused]] const ssize_t n = pread(fd.get(), pid, sizeof pid - 1, 0);
                bad_value("--name", "'" + name + "' is in use by the ctr-run with pid " + std::string(pid) +
                                        " (one run at a time under a name)");
            }
            // The file may have been removed by the run that held it between
            // our open and our lock: then the lock is on a file nobody finds.
            struct stat held {}, named {};
            if (fstat(fd.get(), &held) == 0 && stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
                held.st_dev == named.st_dev) {
                const std::string pid = std::to_string(getpid());
                if (ftruncate(fd.get(), 0) == 0) {
                    [[maybe_unused]] const ssize_t n = pwrite(fd.get(), pid.data(), pid.size(), 0);
                }
                fd_ = std::move(fd);
                return;
            }
        }
    }
    name_lock(const name_lock&) = delete;
    name_lock& operator=(const name_lock&) = delete;
    ~name_lock() {
        if (fd_) unlink(path_.c_str());  // while still holding it
    }

    // /run/ctr-run for root, $XDG_RUNTIME_DIR/ctr-run, else /tmp/ctr-run-UID
    // (also for root of a user namespace, who may not write /run).
    static std::string directory() {
        if (geteuid() == 0 && access("/run", W_OK) == 0) return "/run/ctr-run";
        if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime == '/')
            return std::string(runtime) + "/ctr-run";
        return "/tmp/ctr-run-" + std::to_string(geteuid());
    }

private:
    std::string path_;
    ctr::unique_fd fd_;
};

}  // namespace ctr_run
