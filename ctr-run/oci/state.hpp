#pragma once
// Where the OCI runtime keeps what it knows about a container between its
// invocations (create, start, kill, delete, state, exec are separate
// processes): one directory per container under --root, locked while a
// command works on it, with state.json written by rename so that a reader
// never sees half of it, and the FIFO that holds the container's command
// until `start` (ctr::process::options::start_gate).
#include <ctr/unique_fd.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctr_run::oci {

// A failure the runtime reports (to --log and as its exit status 1). The
// message is complete: what failed, on what, why, the fix where there is one.
struct runtime_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What create records; later commands read it back.
struct container_state {
    std::string oci_version;
    std::string id;
    std::string bundle;               // absolute
    pid_t pid = 0;                    // the container's init, on the host
    std::uint64_t pid_start_time = 0; // field 22 of /proc/<pid>/stat: tells a reused pid apart
    std::string created;              // RFC 3339, UTC
    std::string cgroup_path;          // the group create made (empty: none)
    bool started = false;             // `start` opened the gate
    bool paused = false;              // `pause` froze its cgroup
    std::map<std::string, std::string> annotations;
};

enum class container_status { created, running, paused, stopped };
const char* to_string(container_status s);

// A container's directory under the runtime's root, locked (flock) for as
// long as this object lives.
class container_dir {
public:
    // Makes root/<id>. An id already in use is an error, unless what is
    // there is the leftover of a create that died before it finished (no
    // state.json, nobody holds the lock): that is removed first.
    static container_dir make(const std::filesystem::path& root, const std::string& id);
    // The existing directory of `id`; a clear error when there is none.
    static container_dir open(const std::filesystem::path& root, const std::string& id);

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path gate() const { return path_ / "start"; }
    // Whether create finished (state.json is there).
    bool has_state() const;
    container_state load() const;
    void save(const container_state& state) const;
    // Removes the directory and everything in it (the lock goes with it).
    void remove();
    // Lets other commands at the container while this one goes on (a long
    // exec).
    void unlock() { lock_.reset(); }

private:
    container_dir(std::filesystem::path path, ctr::unique_fd lock) : path_(std::move(path)), lock_(std::move(lock)) {}
    std::filesystem::path path_;
    ctr::unique_fd lock_;
};

// Container ids as runc accepts them: letters, digits, '_', '+', '-', '.',
// not "." or "..", at most 1024 bytes.
void check_id(const std::string& id);

// The start time of a live process, or nothing when it is gone or a zombie.
std::optional<std::uint64_t> live_start_time(pid_t pid);
// Whether the container's init is the process that create started, still
// running.
bool init_alive(const container_state& state);
container_status status_of(const container_state& state);

// The state as `state` prints it (runtime-spec's state object).
std::string state_json(const container_state& state, container_status status);
// The time now in RFC 3339 with nanoseconds, UTC.
std::string rfc3339_now();

}  // namespace ctr_run::oci
