#pragma once
// Scratch directories ctr-run makes outside the sandbox (the writable layer of
// --overlay), named after the ctr-run that made them so that a later run
// removes those of a ctr-run that was killed before it could.

#include <ctr/error.hpp>
#include <ctr/process.hpp>

#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

namespace ctr_run {

// "<pid>.<start time>" of a process (the 22nd field of /proc/<pid>/stat), or
// nothing once it is gone or a zombie. A pid alone could name a later process.
inline std::optional<std::string> process_tag(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 2));
    std::string field, state, start;
    fields >> state;
    for (int i = 4; i <= 22 && fields >> field; ++i)
        if (i == 22) start = field;
    if (start.empty() || state == "Z" || state == "X") return std::nullopt;
    return std::to_string(pid) + "." + start;
}

inline constexpr std::string_view scratch_prefix = "ctr-run-overlay.";

// Removes a scratch directory. Rootless, the files in it may belong to ids
// that only a user namespace maps, so the removal runs as root of one.
inline void remove_scratch(const std::string& dir, bool in_user_namespace) {
    std::error_code ec;
    if (geteuid() == 0 && !in_user_namespace) {
        std::filesystem::remove_all(dir, ec);
        return;
    }
    try {
        (void)ctr::process::spawn({"/bin/rm", "-rf", dir},
                                  {.std_in = ctr::process::stdio::null(), .namespaces = ctr::ns::user})
            .wait();
    } catch (const ctr::error&) {
    }
    std::filesystem::remove_all(dir, ec);  // what is left, if anything
}

// The writable top layer of --overlay: upper and work directories on a tmpfs
// (/dev/shm where it is one), removed at exit. Its name carries this
// process's tag, so that a later run removes the layer of a ctr-run that was
// killed before it could (reap_stale_scratch).
class scratch_layer {
public:
    static std::string base_directory() {
        struct statfs fs {};
        if (statfs("/dev/shm", &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC &&
            access("/dev/shm", W_OK) == 0)
            return "/dev/shm";
        if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) return tmp;
        return "/tmp";
    }

    // Removes the layers whose ctr-run is gone. Best effort: what this user
    // may not remove stays for one that may.
    static void reap_stale_scratch(bool in_user_namespace, std::string_view prefix = scratch_prefix) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(base_directory(), ec)) {
            const std::string name = entry.path().filename().string();
            if (!name.starts_with(prefix)) continue;
            const std::string rest = name.substr(prefix.size());
            const auto dot = rest.find('.');
            const auto second = dot == std::string::npos ? dot : rest.find('.', dot + 1);
            if (second == std::string::npos) continue;
            const std::string tag = rest.substr(0, second);
            pid_t pid = 0;
            if (std::from_chars(tag.data(), tag.data() + dot, pid).ec != std::errc{} || pid <= 0) continue;
            if (process_tag(pid) == tag) continue;  // its ctr-run still runs
            struct stat st {};
            // Root's layers belong to the id root inside maps to; anyone
            // else removes only its own.
            if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || (geteuid() != 0 && st.st_uid != geteuid()))
                continue;
            remove_scratch(entry.path().string(), in_user_namespace);
        }
    }

    scratch_layer() {
        const std::string base = base_directory();
        std::string pattern = base + "/" + std::string(scratch_prefix) + process_tag(getpid()).value_or("0.0") + ".XXXXXX";
        if (!mkdtemp(pattern.data())) throw ctr::error(ctr::step::prepare, errno, pattern, "overlay scratch directory");
        dir_ = pattern;
        for (const char* sub : {"/upper", "/work"})
            if (mkdir((dir_ + sub).c_str(), 0755) != 0)
                throw ctr::error(ctr::step::prepare, errno, dir_ + sub, "overlay scratch directory");
    }
    scratch_layer(const scratch_layer&) = delete;
    scratch_layer& operator=(const scratch_layer&) = delete;
    ~scratch_layer() {
        if (!dir_.empty()) remove_scratch(dir_, in_user_namespace_);
    }

    void give_to(std::pair<uid_t, gid_t> owner) const {
        for (const char* sub : {"", "/upper", "/work"})
            if (chown((dir_ + sub).c_str(), owner.first, owner.second) != 0)
                throw ctr::error(ctr::step::prepare, errno, dir_ + sub, "overlay scratch directory (chown)");
    }
    std::string upper() const { return dir_ + "/upper"; }
    std::string work() const { return dir_ + "/work"; }
    void removed_in_user_namespace() { in_user_namespace_ = true; }

private:
    std::string dir_;
    bool in_user_namespace_ = false;
};

// Files ctr-run writes for the sandbox to see (--add-host's /etc/hosts,
// --dns's /etc/resolv.conf) in a private directory, bound read-only into
// the sandbox and removed with this object. Named like the overlay's
// scratch layer, so that a later run removes those of a killed ctr-run.
class private_files {
public:
    static constexpr std::string_view prefix = "ctr-run-files.";

    private_files() {
        std::string pattern = scratch_layer::base_directory() + "/" + std::string(prefix) +
                              process_tag(getpid()).value_or("0.0") + ".XXXXXX";
        if (!mkdtemp(pattern.data())) throw ctr::error(ctr::step::prepare, errno, pattern, "private files directory");
        dir_ = pattern;
        // Readable by the sandbox's ids, which are not the caller's.
        chmod(dir_.c_str(), 0755);
    }
    private_files(const private_files&) = delete;
    private_files& operator=(const private_files&) = delete;
    ~private_files() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    // Writes `text` to a file `name` in the directory; returns its path.
    std::string write(const std::string& name, const std::string& text) const {
        const std::string path = dir_ + "/" + name;
        std::ofstream out(path);
        out << text;
        out.close();
        if (!out) throw ctr::error(ctr::step::prepare, EIO, path, "private file");
        chmod(path.c_str(), 0644);
        return path;
    }

private:
    std::string dir_;
};

}  // namespace ctr_run
