#include "oci/state.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>

namespace ctr_run::oci {

namespace fs = std::filesystem;

const char* to_string(container_status s) {
    switch (s) {
        case container_status::created: return "created";
        case container_status::running: return "running";
        case container_status::paused: return "paused";
        case container_status::stopped: return "stopped";
    }
    return "unknown";
}

void check_id(const std::string& id) {
    if (id.empty()) throw runtime_failure("container id is empty");
    if (id.size() > 1024) throw runtime_failure("container id is longer than 1024 bytes");
    if (id == "." || id == "..") throw runtime_failure("container id '" + id + "' is not a valid name");
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '+' || c == '-' || c == '.';
        if (!ok)
            throw runtime_failure("container id '" + id + "' has the character '" + std::string(1, c) +
                                  "'; ids are letters, digits, '_', '+', '-' and '.'");
    }
}

namespace {

std::string errno_text(int code) { return std::strerror(code); }

// Opens (creating) and locks dir/lock; blocks while another command holds it.
ctr::unique_fd lock_directory(const fs::path& dir, bool wait) {
    ctr::unique_fd fd(::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw runtime_failure("open " + (dir / "lock").string() + ": " + errno_text(errno));
    int r;
    do r = ::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        if (errno == EWOULDBLOCK) return {};
        throw runtime_failure("lock " + (dir / "lock").string() + ": " + errno_text(errno));
    }
    return fd;
}

void make_root(const fs::path& root) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec)
        throw runtime_failure("make the state directory " + root.string() + ": " + ec.message() +
                              " (choose another with --root)");
    ::chmod(root.c_str(), 0700);
}

}  // namespace

container_dir container_dir::make(const fs::path& root, const std::string& id) {
    check_id(id);
    make_root(root);
    const fs::path dir = root / id;
    // The directory appears under its name already locked: it is made and
    // locked under a temporary name, then renamed into place without
    // replacing anything. So a directory that is there and whose lock is
    // free belongs to nobody: a create that died before state.json.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::string pattern = (root / (".creating-" + id.substr(0, 64) + "-XXXXXX")).string();
        if (!::mkdtemp(pattern.data())) throw runtime_failure("make a directory in " + root.string() + ": " + errno_text(errno));
        const fs::path temporary = pattern;
        ctr::unique_fd lock = lock_directory(temporary, true);
        if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) == 0)
            return container_dir(dir, std::move(lock));
        const int why = errno;
        std::error_code ec;
        fs::remove_all(temporary, ec);
        if (why != EEXIST) throw runtime_failure("make " + dir.string() + ": " + errno_text(why));
        ctr::unique_fd theirs = lock_directory(dir, false);
        if (!theirs || fs::exists(dir / "state.json"))
            throw runtime_failure("container '" + id + "' already exists (" + dir.string() +
                                  "); delete it first: ctr-run delete --force " + id);
        fs::remove_all(dir, ec);
    }
    throw runtime_failure("make " + dir.string() + ": other creates of '" + id + "' kept racing with this one");
}

container_dir container_dir::open(const fs::path& root, const std::string& id) {
    check_id(id);
    const fs::path dir = root / id;
    struct stat info{};
    if (::stat(dir.c_str(), &info) != 0) {
        if (errno == ENOENT) throw runtime_failure("container '" + id + "' does not exist (no " + dir.string() + ")");
        throw runtime_failure("stat " + dir.string() + ": " + errno_text(errno));
    }
    return container_dir(dir, lock_directory(dir, true));
}

bool container_dir::has_state() const { return fs::exists(path_ / "state.json"); }

container_state container_dir::load() const {
    const fs::path file = path_ / "state.json";
    std::ifstream in(file);
    if (!in) throw runtime_failure("container state " + file.string() + " is missing: its create did not finish");
    nlohmann::json j;
    try {
        in >> j;
        container_state s;
        s.oci_version = j.at("ociVersion").get<std::string>();
        s.id = j.at("id").get<std::string>();
        s.bundle = j.at("bundle").get<std::string>();
        s.pid = j.at("pid").get<pid_t>();
        s.pid_start_time = j.at("pidStartTime").get<std::uint64_t>();
        s.created = j.at("created").get<std::string>();
        s.cgroup_path = j.value("cgroupPath", std::string{});
        s.started = j.value("started", false);
        s.paused = j.value("paused", false);
        if (j.contains("annotations")) s.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
        return s;
    } catch (const nlohmann::json::exception& e) {
        throw runtime_failure("container state " + file.string() + " is damaged: " + e.what());
    }
}

void container_dir::save(const container_state& s) const {
    nlohmann::json j = {{"ociVersion", s.oci_version}, {"id", s.id},           {"bundle", s.bundle},
                        {"pid", s.pid},                {"pidStartTime", s.pid_start_time},
                        {"created", s.created},        {"cgroupPath", s.cgroup_path},
                        {"started", s.started},        {"paused", s.paused},
                        {"annotations", s.annotations}};
    const fs::path file = path_ / "state.json";
    const fs::path temporary = path_ / "state.json.new";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << j.dump() << '\n';
        if (!out.flush()) throw runtime_failure("write " + temporary.string() + ": " + errno_text(errno));
    }
    if (::rename(temporary.c_str(), file.c_str()) != 0)
        throw runtime_failure("rename " + temporary.string() + ": " + errno_text(errno));
}

void container_dir::remove() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (ec) throw runtime_failure("remove " + path_.string() + ": " + ec.message());
    lock_.reset();
}

std::optional<std::uint64_t> live_start_time(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(in, text)) return std::nullopt;
    // The command name is in parentheses and may hold anything: fields
    // are counted from the last ')'.
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    std::vector<std::string> rest;
    while (fields >> field) rest.push_back(field);
    // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
    if (rest.size() < 20) return std::nullopt;
    if (rest[0] == "Z" || rest[0] == "X") return std::nullopt;
    try {
        return std::stoull(rest[19]);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool init_alive(const container_state& state) {
    const auto started = live_start_time(state.pid);
    return started && *started == state.pid_start_time;
}

container_status status_of(const container_state& state) {
    if (!init_alive(state)) return container_status::stopped;
    if (!state.started) return container_status::created;
    return state.paused ? container_status::paused : container_status::running;
}

std::string state_json(const container_state& s, container_status status) {
    nlohmann::json j = {{"ociVersion", s.oci_version},
                        {"id", s.id},
                        {"status", to_string(status)},
                        {"pid", status == container_status::stopped ? 0 : s.pid},
                        {"bundle", s.bundle},
                        {"created", s.created}};
    j["annotations"] = s.annotations;
    return j.dump(2);
}

std::string rfc3339_now() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    gmtime_r(&now.tv_sec, &utc);
    char base[32];
    std::strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%s.%09ldZ", base, now.tv_nsec);
    return text;
}

}  // namespace ctr_run::oci
