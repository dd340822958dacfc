// The OCI runtime commands (runtime.hpp; docs/oci.md). Each invocation is
// its own process: create leaves the container's init held before exec
// (ctr::process::options::start_gate on a FIFO in the container's state
// directory), a child of the caller once create has exited (conmon is a
// subreaper); start writes the byte that lets it exec; kill, delete and state
// find it again by its pid and start time, recorded in state.json.
#include "oci/runtime.hpp"

#include "help.hpp"
#include "oci/config.hpp"
#include "oci/container_cgroup.hpp"
#include "oci/seccomp_profile.hpp"
#include "oci/state.hpp"
#include "values.hpp"

#include <ctr/ctr.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_run::oci {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view runtime_commands[] = {"create", "start", "kill", "delete", "state", "exec",
                                                 "run",    "list",  "ps",   "pause",  "resume", "features"};

// Flags every command takes, before the command's name.
struct global_flags {
    fs::path root;
    std::string log_path;
    bool log_json = false;
    bool debug = false;
};

// One command's own flags and its positional arguments.
struct command_line {
    std::string name;
    std::map<std::string, std::string> values;
    std::set<std::string> switches;
    std::vector<std::string> positional;

    bool has(const std::string& flag) const { return switches.count(flag) != 0; }
    std::string value(const std::string& flag, std::string fallback = {}) const {
        const auto it = values.find(flag);
        return it == values.end() ? fallback : it->second;
    }
};

// A flag of a command: its long name, a one-letter alias, whether it takes a
// value. Flags that change nothing here are accepted (so that engines that
// pass them work) and listed as such in docs/oci.md.
struct flag_spec {
    std::string_view name;
    char alias;
    bool takes_value;
};

const std::map<std::string_view, std::vector<flag_spec>>& command_flags() {
    static const std::map<std::string_view, std::vector<flag_spec>> table = {
        {"create",
         {{"bundle", 'b', true}, {"pid-file", 0, true}, {"console-socket", 0, true}, {"preserve-fds", 0, true},
          {"no-pivot", 0, false}, {"no-new-keyring", 0, false}}},
        {"run",
         {{"bundle", 'b', true}, {"pid-file", 0, true}, {"console-socket", 0, true}, {"preserve-fds", 0, true},
          {"detach", 'd', false}, {"no-pivot", 0, false}, {"no-new-keyring", 0, false}}},
        {"start", {}},
        {"kill", {{"all", 'a', false}}},
        {"delete", {{"force", 'f', false}}},
        {"state", {}},
        {"list", {{"format", 'f', true}, {"quiet", 'q', false}}},
        {"features", {}},
        {"ps", {{"format", 'f', true}}},
        {"pause", {}},
        {"resume", {}},
        {"exec",
         {{"process", 'p', true}, {"detach", 'd', false}, {"pid-file", 0, true}, {"console-socket", 0, true},
          {"tty", 't', false}, {"cwd", 0, true}, {"env", 'e', true}, {"user", 'u', true}, {"cap", 'c', true},
          {"no-new-privs", 0, false}, {"preserve-fds", 0, true}, {"process-label", 0, true},
          {"apparmor", 0, true}, {"cgroup", 0, true}, {"additional-gids", 'g', true}}},
    };
    return table;
}

bool is_runtime_command(std::string_view word) {
    for (const auto command : runtime_commands)
        if (word == command) return true;
    return false;
}

bool is_global_flag(std::string_view word) {
    for (const std::string_view flag : {"--root", "--log", "--log-format", "--debug", "--systemd-cgroup", "--rootless"})
        if (word == flag || (word.size() > flag.size() && word.substr(0, flag.size()) == flag &&
                             word[flag.size()] == '='))
            return true;
    return false;
}

// Whether this process is in the machine's initial user namespace (its uid
// map is the identity over every id).
bool in_initial_user_namespace() {
    std::ifstream in("/proc/self/uid_map");
    std::uint64_t inside = 1, outside = 1, count = 0;
    in >> inside >> outside >> count;
    return inside == 0 && outside == 0 && count == 4294967295ULL;
}

fs::path default_root() {
    // Rootless Podman calls its runtime as uid 0 of its own user namespace,
    // where /run is not writable: then, as for any other user, the state
    // goes below XDG_RUNTIME_DIR.
    const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
    const bool has_runtime_dir = runtime_dir && *runtime_dir;
    if (geteuid() == 0 && (in_initial_user_namespace() || !has_runtime_dir)) return "/run/ctr";
    if (has_runtime_dir) return fs::path(runtime_dir) / "ctr";
    return fs::path("/tmp") / ("ctr-" + std::to_string(geteuid()));
}

// Errors and debug lines: to --log when given (as JSON lines with
// --log-format json, the way conmon and Podman read them), else to stderr.
// With --log, nothing goes to stderr: create's stderr is the container's.
class logger {
public:
    void open(const global_flags& flags) {
        json_ = flags.log_json;
        debug_ = flags.debug;
        if (flags.log_path.empty()) return;
        file_.open(flags.log_path, std::ios::app);
    }
    void error(const std::string& message) { write("error", message); }
    void warning(const std::string& message) { write("warning", message); }
    void debug(const std::string& message) {
        if (debug_) write("debug", message);
    }

private:
    void write(const char* level, const std::string& message) {
        std::ostream& out = file_.is_open() ? static_cast<std::ostream&>(file_) : std::cerr;
        if (json_) {
            out << nlohmann::json{{"level", level}, {"msg", message}, {"time", rfc3339_now()}}.dump() << '\n';
        } else if (file_.is_open()) {
            out << "time=\"" << rfc3339_now() << "\" level=" << level << " msg=" << nlohmann::json(message).dump()
                << '\n';
        } else {
            out << "ctr-run: " << (std::string_view(level) == "error" ? "" : std::string(level) + ": ") << message
                << '\n';
        }
        out.flush();
    }
    std::ofstream file_;
    bool json_ = false;
    bool debug_ = false;
};

logger& log() {
    static logger instance;
    return instance;
}

// The global flags, up to the command's name (argv[next]).
global_flags parse_globals(int argc, char** argv, int& next) {
    global_flags globals;
    int& i = next;
    i = 1;
    const auto value_of = [&](std::string_view word, std::string_view flag) -> std::string {
        if (word.size() > flag.size()) return std::string(word.substr(flag.size() + 1));
        if (i + 1 >= argc) throw runtime_failure(std::string(flag) + " needs a value");
        return argv[++i];
    };
    for (; i < argc; ++i) {
        const std::string_view word = argv[i];
        if (!is_global_flag(word)) break;
        if (word.starts_with("--root")) globals.root = value_of(word, "--root");
        else if (word.starts_with("--log-format")) {
            const std::string format = value_of(word, "--log-format");
            if (format != "json" && format != "text")
                throw runtime_failure("--log-format: '" + format + "' is not json or text");
            globals.log_json = format == "json";
        } else if (word.starts_with("--log")) globals.log_path = value_of(word, "--log");
        else if (word.starts_with("--debug")) globals.debug = true;
        else if (word.starts_with("--rootless")) {
            // runc's --rootless auto|true|false: ctr decides that from the
            // caller's ids itself.
            if (word == "--rootless" && i + 1 < argc && argv[i + 1][0] != '-') ++i;
        } else if (word.starts_with("--systemd-cgroup")) {
            throw runtime_failure(
                "--systemd-cgroup: ctr-run makes cgroups itself (the cgroupfs manager) and cannot ask systemd for "
                "them; configure the engine's cgroup manager as cgroupfs (Podman: --cgroup-manager cgroupfs, "
                "containers.conf cgroup_manager = \"cgroupfs\")");
        }
    }
    if (globals.root.empty()) globals.root = default_root();
    return globals;
}

// The command, its flags and its positional arguments, from argv[i] on.
command_line parse_command(int argc, char** argv, int i) {
    command_line command;
    if (i >= argc) throw runtime_failure("no command: create, start, kill, delete, state, exec, run, list or features");
    command.name = argv[i++];
    if (!is_runtime_command(command.name)) throw runtime_failure("unknown command '" + command.name + "'");
    const auto& specs = command_flags().at(command.name);
    bool only_positional = false;
    for (; i < argc; ++i) {
        std::string_view word = argv[i];
        // exec's command is everything after the id.
        if (only_positional || word.empty() || word[0] != '-' || word == "-") {
            command.positional.emplace_back(word);
            if (command.name == "exec" && command.positional.size() == 1) {
                for (++i; i < argc; ++i) command.positional.emplace_back(argv[i]);
                break;
            }
            continue;
        }
        if (word == "--") {
            only_positional = true;
            continue;
        }
        std::string name;
        std::optional<std::string> attached;
        if (word.starts_with("--")) {
            word.remove_prefix(2);
            const auto equals = word.find('=');
            name = std::string(word.substr(0, equals));
            if (equals != std::string_view::npos) attached = std::string(word.substr(equals + 1));
        } else {
            word.remove_prefix(1);
            for (const auto& spec : specs)
                if (spec.alias != 0 && word.size() >= 1 && word[0] == spec.alias) name = std::string(spec.name);
            if (name.empty()) throw runtime_failure(command.name + ": unknown flag '-" + std::string(word) + "'");
            if (word.size() > 1) attached = std::string(word.substr(1));
        }
        const flag_spec* spec = nullptr;
        for (const auto& candidate : specs)
            if (candidate.name == name) spec = &candidate;
        if (!spec) throw runtime_failure(command.name + ": unknown flag '--" + name + "'");
        if (!spec->takes_value) {
            command.switches.insert(name);
            continue;
        }
        std::string value;
        if (attached) value = *attached;
        else if (i + 1 < argc) value = argv[++i];
        else throw runtime_failure(command.name + ": --" + name + " needs a value");
        // --env and --cap may repeat; later ones add.
        if (command.values.count(name) && (name == "env" || name == "cap"))
            command.values[name] += std::string(1, '\0') + value;
        else command.values[name] = value;
    }
    return command;
}

const std::string& the_id(const command_line& command) {
    if (command.positional.empty()) throw runtime_failure(command.name + ": which container? (the id is missing)");
    return command.positional.front();
}

void write_file_atomically(const fs::path& file, const std::string& text) {
    const fs::path temporary = file.string() + ".ctr-run-tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
        if (!out.flush()) throw runtime_failure("write " + temporary.string() + ": " + std::strerror(errno));
    }
    if (::rename(temporary.c_str(), file.c_str()) != 0)
        throw runtime_failure("rename " + temporary.string() + " to " + file.string() + ": " + std::strerror(errno));
}

// The engine's --console-socket, connected; the library sends the pty
// master to it.
ctr::unique_fd connect_console_socket(const std::string& path) {
    ctr::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw runtime_failure("console socket: socket: " + std::string(std::strerror(errno)));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path)
        throw runtime_failure("--console-socket " + path + ": the path is too long for a unix socket");
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        throw runtime_failure("--console-socket " + path + ": connect: " + std::strerror(errno));
    return fd;
}

std::vector<ctr::ns::existing> namespaces_of(const container_config& config, pid_t init);

// With process.terminal, the pty's master goes to the engine's
// --console-socket (connected here; the returned fd must outlive the spawn).
// A socket without a terminal, or the reverse, is the engine's mistake.
ctr::unique_fd attach_terminal(const command_line& command, container_config& config) {
    const std::string socket = command.value("console-socket");
    if (!config.terminal) {
        if (!socket.empty()) throw runtime_failure("--console-socket is given but process.terminal is false");
        return {};
    }
    if (socket.empty())
        throw runtime_failure("process.terminal is true but there is no --console-socket to send the terminal to");
    ctr::unique_fd console = connect_console_socket(socket);
    config.options.terminal = ctr::process::terminal_options{
        .size = config.console_size.value_or(ctr::process::window_size{}), .console_socket = console.get()};
    return console;
}

// --preserve-fds N: fds 3 to 3+N-1 go to the process at their numbers.
void preserve_fds(const command_line& command, ctr::process::options& opts) {
    const std::string preserve = command.value("preserve-fds");
    if (preserve.empty()) return;
    const auto count = parse_integer<int>(preserve);
    if (!count || *count < 0 || *count > 1024)
        throw runtime_failure("--preserve-fds: '" + preserve + "' is not a count from 0 to 1024");
    for (int fd = 3; fd < 3 + *count; ++fd) opts.fds.push_back({fd, fd});
}

// The status a shell would give: the exit code, or 128+N for signal N.
int exit_status(const ctr::process::result& result) {
    return result.exit_code ? *result.exit_code : 128 + result.signal.value_or(SIGKILL);
}

// Runs one hook: the state on its stdin, its timeout enforced; in the
// runtime's namespaces, or in those of `join` (createContainer,
// startContainer).
void run_hook(const hook& h, const std::string& state, const char* kind, std::vector<ctr::ns::existing> join = {}) {
    ctr::process::options opts;
    opts.executable = h.path;
    opts.join = std::move(join);
    opts.env.inherit = false;
    for (const auto& entry : h.env) {
        const auto equals = entry.find('=');
        opts.env.set.emplace_back(entry.substr(0, equals), equals == std::string::npos ? "" : entry.substr(equals + 1));
    }
    opts.std_in = ctr::process::stdio::pipe();
    opts.std_out = ctr::process::stdio::capture();
    opts.std_err = ctr::process::stdio::capture();
    if (h.timeout) opts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*h.timeout);
    std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
    auto child = ctr::process::spawn(std::move(args), opts);
    // A hook that does not read its stdin must not block us.
    (void)::write(child.std_in().get(), state.data(), state.size());
    child.std_in().reset();
    const auto result = child.wait();
    if (!result.success()) {
        std::string why = result.timed_out                ? "timed out after " + std::to_string(h.timeout->count()) + " s"
                          : result.exit_code             ? "exited with " + std::to_string(*result.exit_code)
                          : result.signal                ? "was killed by signal " + std::to_string(*result.signal)
                                                         : "failed";
        std::string output = result.std_err.empty() ? result.std_out : result.std_err;
        while (!output.empty() && output.back() == '\n') output.pop_back();
        throw runtime_failure(std::string(kind) + " hook " + h.path + " " + why + (output.empty() ? "" : ": " + output));
    }
}

void run_hooks(const std::vector<hook>& hooks, const container_state& state, container_status status,
               const char* kind, const std::vector<ctr::ns::existing>& join = {}) {
    const std::string text = state_json(state, status);
    for (const auto& h : hooks) run_hook(h, text, kind, join);
}

// Poststart and poststop: a failure is a warning, the container goes on (the
// runtime specification's rule).
void run_hooks_warning_only(const std::vector<hook>& hooks, const container_state& state, container_status status,
                            const char* kind) {
    const std::string text = state_json(state, status);
    for (const auto& h : hooks) {
        try {
            run_hook(h, text, kind);
        } catch (const std::exception& e) {
            log().warning(e.what());
        }
    }
}

// A pidfd of the container's init, checked against the recorded start time
// after it was opened (so it cannot be a later process that reused the pid).
ctr::unique_fd open_init(const container_state& state) {
    ctr::unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, state.pid, 0)));
    if (!pidfd) return {};
    if (!init_alive(state)) return {};
    return pidfd;
}

bool wait_for_exit(int pidfd, std::chrono::milliseconds limit) {
    pollfd ready{pidfd, POLLIN, 0};
    int r;
    do r = ::poll(&ready, 1, static_cast<int>(limit.count()));
    while (r < 0 && errno == EINTR);
    return r > 0;
}

int parse_runtime_signal(const std::string& text) {
    try {
        return parse_signal("kill", text);
    } catch (const usage_error& e) {
        throw runtime_failure("kill: " + e.message);
    }
}

// Which namespaces a process started in the container joins: every kind the
// config created or joined, found through the init's /proc/PID/ns.
std::vector<ctr::ns::existing> namespaces_of(const container_config& config, pid_t init) {
    std::vector<ctr::ns::existing> out;
    ctr::ns::kinds kinds = config.options.namespaces;
    if (config.options.root) kinds = kinds | ctr::ns::mount;
    for (const auto& joined : config.options.join) kinds = kinds | joined.which;
    const std::string base = "/proc/" + std::to_string(init) + "/ns/";
    for (const ctr::ns::kind kind : ctr::ns::every_kind) {
        if (!kinds.has(kind)) continue;
        // The user namespace first: it grants the rights to join the rest.
        auto entry = ctr::ns::existing::path(kind, base + std::string(ctr::ns::name(kind)));
        if (kind == ctr::ns::user) out.insert(out.begin(), std::move(entry));
        else out.push_back(std::move(entry));
    }
    return out;
}

// The seccomp filter a container's config asks for, with the capabilities
// the process keeps as the context of its includes and excludes.
void apply_seccomp(container_config& config) {
    if (!config.seccomp) return;
    seccomp_context context;
    if (config.options.security.capabilities) context.capabilities = config.options.security.capabilities->keep;
    config.options.security.seccomp = seccomp_from_json(*config.seccomp, context, "linux.seccomp");
}

// start's work: the startContainer hooks in the container's namespaces (a
// failure fails the start), then the byte on the gate that lets the held
// process exec.
void let_it_run(const container_dir& dir, const container_state& state, const container_config* config) {
    if (config && !config->hooks.start_container.empty())
        run_hooks(config->hooks.start_container, state, container_status::created, "startContainer",
                  namespaces_of(*config, state.pid));
    ctr::unique_fd writer(::open(dir.gate().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!writer)
        throw runtime_failure("start " + state.id + ": open " + dir.gate().string() + ": " + std::strerror(errno) +
                              (errno == ENXIO ? " (the container's process is no longer waiting)" : ""));
    if (::write(writer.get(), "s", 1) != 1)
        throw runtime_failure("start " + state.id + ": write " + dir.gate().string() + ": " + std::strerror(errno));
    ::unlink(dir.gate().c_str());
}

// ---- the commands ----

int create(const global_flags& globals, const command_line& command, bool then_start) {
    const std::string& id = the_id(command);
    std::error_code ec;
    const fs::path bundle = fs::absolute(command.value("bundle", "."), ec).lexically_normal();
    container_dir dir = container_dir::make(globals.root, id);
    try {
        container_config config = load_config(bundle);
        apply_seccomp(config);
        ctr::process::options& opts = config.options;
        // The process is pid 1 of its namespace, as with runc and crun: it
        // gets the signals the engine sends (and ignores those it has no
        // handler for), and what it starts is its to reap. An engine that
        // wants an init adds one (podman --init).
        opts.init = false;

        const ctr::unique_fd console = attach_terminal(command, config);
        preserve_fds(command, opts);

        container_state state{.oci_version = config.oci_version,
                              .id = id,
                              .bundle = bundle.string(),
                              .created = rfc3339_now(),
                              .cgroup_path = {},
                              .started = false,
                              .annotations = config.annotations};
        std::optional<ctr::cgroup::group> group;
        // Without a cgroupsPath, a group of the container's id below ours.
        if (config.cgroup && config.cgroup->path.empty()) config.cgroup->path = "ctr-run-" + id;
        if (config.cgroup) group = make_container_group(*config.cgroup);
        if (group) {
            opts.cgroup = &*group;
            state.cgroup_path = config.cgroup->path;
        }
        // prestart and createRuntime run once the namespaces exist, before
        // pivot_root, in the runtime's namespaces; oom_score_adj is the
        // init's (the processes of the container inherit it).
        const auto oom_score_adj = config.oom_score_adj;
        opts.while_child_waits.push_back([&, oom_score_adj](const ctr::process::waiting_child& waiting) {
            if (oom_score_adj) {
                const std::string file = "/proc/" + std::to_string(waiting.pid) + "/oom_score_adj";
                std::ofstream out(file);
                out << *oom_score_adj;
                if (!out.flush())
                    throw runtime_failure("process.oomScoreAdj: write " + file + ": " + std::strerror(errno) +
                                          (*oom_score_adj < 0 ? " (lowering it needs CAP_SYS_RESOURCE)" : ""));
            }
            container_state creating = state;
            creating.pid = waiting.pid;
            run_hooks(config.hooks.prestart, creating, container_status::created, "prestart");
            run_hooks(config.hooks.create_runtime, creating, container_status::created, "createRuntime");
            // createContainer: in the container's namespaces, before its
            // mounts and pivot_root (its mount namespace is still a copy of
            // ours, so the hook's path resolves as in the runtime's). The
            // cgroup and time namespaces come later in a launch: not those.
            if (!config.hooks.create_container.empty()) {
                auto join = namespaces_of(config, waiting.pid);
                std::erase_if(join, [](const ctr::ns::existing& e) {
                    return e.which == ctr::ns::cgroup || e.which == ctr::ns::time;
                });
                run_hooks(config.hooks.create_container, creating, container_status::created, "createContainer", join);
            }
        });

        // The gate: held open for reading and writing by the container's
        // command, so that its read blocks until `start` writes a byte.
        if (::mkfifo(dir.gate().c_str(), 0600) != 0)
            throw runtime_failure("mkfifo " + dir.gate().string() + ": " + std::strerror(errno));
        ctr::unique_fd gate(::open(dir.gate().c_str(), O_RDWR | O_CLOEXEC));
        if (!gate) throw runtime_failure("open " + dir.gate().string() + ": " + std::strerror(errno));
        opts.start_gate = gate.get();

        log().debug("create " + id + ": spawning " + (config.args.empty() ? "" : config.args.front()));
        auto child = ctr::process::spawn(config.args, opts);
        gate.reset();
        state.pid = child.pid();
        const auto started = live_start_time(state.pid);
        if (!started) throw runtime_failure("the container's init (pid " + std::to_string(state.pid) + ") ended during create");
        state.pid_start_time = *started;
        dir.save(state);
        if (const std::string pid_file = command.value("pid-file"); !pid_file.empty())
            write_file_atomically(fs::absolute(pid_file), std::to_string(state.pid));
        if (group) forget_container_group(*group);

        if (!then_start) {
            // The init runs on; once we exit it is the caller's (conmon is a
            // subreaper), which reaps it.
            (void)child.release();  // its pidfd closes here
            return 0;
        }
        // run: start it at once; without --detach, wait and clean up as
        // `delete` would.
        let_it_run(dir, state, &config);
        state.started = true;
        dir.save(state);
        run_hooks_warning_only(config.hooks.poststart, state, container_status::running, "poststart");
        if (command.has("detach")) {
            (void)child.release();  // its pidfd closes here
            return 0;
        }
        const auto result = child.wait();
        if (!state.cgroup_path.empty())
            if (auto reopened = open_container_group(state.cgroup_path)) remove_container_group(*reopened);
        run_hooks_warning_only(config.hooks.poststop, state, container_status::stopped, "poststop");
        dir.remove();
        return exit_status(result);
    } catch (...) {
        // The child (handle) and the group were destroyed on the way here,
        // killing and removing what create had made. The directory goes
        // too; if it cannot, the next create or delete of the id removes it
        // (it has no state.json), and the first error is the one to report.
        try {
            dir.remove();
        } catch (const std::exception&) {
        }
        throw;
    }
}

int start(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    container_dir dir = container_dir::open(globals.root, id);
    container_state state = dir.load();
    switch (status_of(state)) {
        case container_status::running:
        case container_status::paused: throw runtime_failure("container '" + id + "' is already running");
        case container_status::stopped:
            throw runtime_failure("container '" + id + "' has stopped; it cannot be started (delete it)");
        case container_status::created: break;
    }
    // The hooks come from the bundle's config; a bundle that can no longer
    // be read costs them (a warning), not the start.
    std::optional<container_config> config;
    try {
        config = load_config(state.bundle);
    } catch (const std::exception& e) {
        log().warning("start " + id + ": the hooks of " + state.bundle + "/config.json: " + e.what());
    }
    let_it_run(dir, state, config ? &*config : nullptr);
    state.started = true;
    dir.save(state);
    if (config) run_hooks_warning_only(config->hooks.poststart, state, container_status::running, "poststart");
    return 0;
}

int kill_command(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    const int sig = parse_runtime_signal(command.positional.size() > 1 ? command.positional[1] : "SIGTERM");
    container_dir dir = container_dir::open(globals.root, id);
    const container_state state = dir.load();
    if (command.has("all") && !state.cgroup_path.empty()) {
        if (auto group = open_container_group(state.cgroup_path)) {
            signal_container_group(*group, sig);
            return 0;
        }
    }
    ctr::unique_fd pidfd = open_init(state);
    if (!pidfd) throw runtime_failure("container not running");
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0)
        throw runtime_failure("kill " + id + ": " + std::strerror(errno));
    return 0;
}

int delete_command(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    // containerd's shim deletes, then deletes again with --force: a
    // container that is already gone is what --force wants.
    if (command.has("force") && !fs::exists(globals.root / id)) {
        check_id(id);
        return 0;
    }
    container_dir dir = container_dir::open(globals.root, id);
    if (!dir.has_state()) {
        // A create that died before it finished: nothing runs.
        dir.remove();
        return 0;
    }
    const container_state state = dir.load();
    const container_status status = status_of(state);
    if ((status == container_status::running || status == container_status::paused) && !command.has("force"))
        throw runtime_failure("cannot delete container '" + id + "': it is " + to_string(status) +
                              "; stop it first or use --force");
    // A frozen process cannot act on SIGKILL until it is thawed.
    if (status == container_status::paused)
        if (auto group = open_container_group(state.cgroup_path)) group->thaw();
    if (ctr::unique_fd pidfd = open_init(state)) {
        ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
        if (!wait_for_exit(pidfd.get(), std::chrono::seconds(10)))
            throw runtime_failure("delete " + id + ": its init (pid " + std::to_string(state.pid) +
                                  ") did not end within 10 s of SIGKILL");
    }
    if (!state.cgroup_path.empty())
        if (auto group = open_container_group(state.cgroup_path)) remove_container_group(*group);
    try {
        const container_config config = load_config(state.bundle);
        run_hooks_warning_only(config.hooks.poststop, state, container_status::stopped, "poststop");
    } catch (const std::exception& e) {
        log().warning("poststop hooks of " + id + ": " + e.what());
    }
    dir.remove();
    return 0;
}

int state_command(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    container_dir dir = container_dir::open(globals.root, id);
    const container_state state = dir.load();
    std::cout << state_json(state, status_of(state)) << '\n';
    return 0;
}

int list_command(const global_flags& globals, const command_line& command) {
    const bool json = command.value("format", "table") == "json";
    nlohmann::json all = nlohmann::json::array();
    if (!command.has("quiet") && !json) std::printf("%-24s %-8s %-10s %s\n", "ID", "PID", "STATUS", "BUNDLE");
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(globals.root, ec)) {
        if (entry.path().filename().string().starts_with(".")) continue;  // a create in progress
        try {
            container_dir dir = container_dir::open(globals.root, entry.path().filename().string());
            if (!dir.has_state()) continue;
            const container_state state = dir.load();
            const container_status status = status_of(state);
            if (json) all.push_back(nlohmann::json::parse(state_json(state, status)));
            else if (command.has("quiet")) std::printf("%s\n", state.id.c_str());
            else
                std::printf("%-24s %-8d %-10s %s\n", state.id.c_str(), status == container_status::stopped ? 0 : state.pid,
                            to_string(status), state.bundle.c_str());
        } catch (const runtime_failure&) {
            continue;
        }
    }
    if (json) std::cout << all.dump() << '\n';
    return 0;
}

int exec_command(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    container_dir dir = container_dir::open(globals.root, id);
    const container_state state = dir.load();
    if (status_of(state) == container_status::stopped)
        throw runtime_failure("cannot exec in container '" + id + "': it is not running");
    container_config config = load_config(state.bundle);
    if (const std::string file = command.value("process"); !file.empty()) {
        std::ifstream in(file);
        if (!in) throw runtime_failure("--process " + file + ": " + std::strerror(errno));
        nlohmann::json process;
        try {
            in >> process;
        } catch (const nlohmann::json::exception& e) {
            throw runtime_failure("--process " + file + ": not JSON: " + e.what());
        }
        apply_process(process, config);
    } else {
        if (command.positional.size() < 2) throw runtime_failure("exec: no command (give one after the id, or --process)");
        config.args.assign(command.positional.begin() + 1, command.positional.end());
        config.terminal = command.has("tty");
    }
    if (const std::string cwd = command.value("cwd"); !cwd.empty()) config.options.cwd = cwd;
    if (const std::string env = command.value("env"); !env.empty()) {
        for (const auto item : split(env, '\0')) {
            const auto equals = item.find('=');
            config.options.env.set.emplace_back(std::string(item.substr(0, equals)),
                                                equals == std::string_view::npos ? "" : std::string(item.substr(equals + 1)));
        }
    }
    if (const std::string user = command.value("user"); !user.empty()) {
        const auto parts = split(user, ':');
        const auto uid = parse_integer<uid_t>(parts[0]);
        if (!uid) throw runtime_failure("exec --user: '" + user + "' is not UID[:GID]");
        config.options.uid = *uid;
        if (parts.size() > 1) {
            const auto gid = parse_integer<gid_t>(parts[1]);
            if (!gid) throw runtime_failure("exec --user: '" + user + "' is not UID[:GID]");
            config.options.gid = *gid;
        }
    }
    if (command.has("no-new-privs")) config.options.security.no_new_privileges = true;
    apply_seccomp(config);

    ctr::process::options& opts = config.options;
    // The container's namespaces, root and groups are there already: join
    // them instead of making them.
    opts.join = namespaces_of(config, state.pid);
    opts.namespaces = {};
    opts.root.reset();
    opts.hostname.clear();
    opts.domainname.clear();
    opts.id_maps = {};
    opts.while_child_waits.clear();
    std::optional<ctr::cgroup::group> group;
    if (!state.cgroup_path.empty()) {
        group = open_container_group(state.cgroup_path);
        if (group) opts.cgroup = &*group;
    }
    const ctr::unique_fd console = attach_terminal(command, config);
    preserve_fds(command, opts);
    // Nothing of the container's directory is needed any more: a long exec
    // must not hold its lock (kill and delete take it).
    dir.unlock();
    auto child = ctr::process::spawn(config.args, opts);
    if (const std::string pid_file = command.value("pid-file"); !pid_file.empty())
        write_file_atomically(fs::absolute(pid_file), std::to_string(child.pid()));
    if (group) forget_container_group(*group);
    if (command.has("detach")) {
        (void)child.release();  // its pidfd closes here
        return 0;
    }
    const auto result = child.wait();
    return exit_status(result);
}

// The mount options create understands (config.hpp maps them).
nlohmann::json supported_mount_options() {
    return {"async", "atime", "bind", "defaults", "dev", "diratime", "exec", "mand", "noatime", "nodev",
            "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
            "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "rw", "shared", "slave",
            "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "runbindable", "idmap", "ridmap"};
}

nlohmann::json seccomp_features() {
    return {{"enabled", true},
            {"actions",
             {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
              "SCMP_ACT_LOG", "SCMP_ACT_TRAP"}},
            {"operators",
             {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
              "SCMP_CMP_NE"}},
            {"archs", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
            {"knownFlags", nlohmann::json::array()},
            {"supportedFlags", nlohmann::json::array()}};
}

// The container's group, which pause, resume and ps need.
ctr::cgroup::group group_of(const container_state& state, const char* command) {
    if (state.cgroup_path.empty())
        throw runtime_failure(std::string(command) + " " + state.id + ": the container has no cgroup of its own");
    auto group = open_container_group(state.cgroup_path);
    if (!group) throw runtime_failure(std::string(command) + " " + state.id + ": its cgroup " + state.cgroup_path + " is gone");
    return std::move(*group);
}

// pause and resume: the cgroup freezer (cgroup.freeze on v2, freezer.state
// on v1), as runc does.
int freeze_command(const global_flags& globals, const command_line& command, bool frozen) {
    const std::string& id = the_id(command);
    container_dir dir = container_dir::open(globals.root, id);
    container_state state = dir.load();
    const container_status status = status_of(state);
    if (status != container_status::running && status != container_status::paused)
        throw runtime_failure("container not running");
    auto group = group_of(state, frozen ? "pause" : "resume");
    if (frozen) group.freeze();
    else group.thaw();
    state.paused = frozen;
    dir.save(state);
    return 0;
}

// ps: the container's processes, as runc prints them with --format json (a
// list of host pids); the table form is ps(1)'s own over those pids.
int ps_command(const global_flags& globals, const command_line& command) {
    const std::string& id = the_id(command);
    container_dir dir = container_dir::open(globals.root, id);
    const container_state state = dir.load();
    auto group = group_of(state, "ps");
    const std::vector<pid_t> pids = group.pids();
    if (command.value("format", "table") == "json") {
        std::cout << nlohmann::json(pids).dump() << '\n';
        return 0;
    }
    std::printf("PID\n");
    for (const pid_t pid : pids) std::printf("%d\n", pid);
    return 0;
}

int features_command() {
    nlohmann::json features = {
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", "1.3.0"},
        {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
        {"mountOptions", supported_mount_options()},
        {"linux",
         {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
          {"capabilities", nlohmann::json::array()},
          {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
          {"seccomp", seccomp_features()},
          {"apparmor", {{"enabled", false}}},
          {"selinux", {{"enabled", false}}},
          {"intelRdt", {{"enabled", false}}}}},
        {"annotations", {{"org.opencontainers.runtime-spec.features", "ctr-run " CTR_RUN_VERSION}}},
    };
    for (const auto name : ctr::detail::capability_names) features["linux"]["capabilities"].push_back(name);
    std::cout << features.dump(2) << '\n';
    return 0;
}

}  // namespace

bool is_runtime_invocation(int argc, char** argv) {
    if (argc < 2) return false;
    const std::string_view first = argv[1];
    // --rootless is also a flag of the Docker-style run (ctr-run --rootless
    // CMD); as runc's global flag it comes after --root or --log.
    return is_runtime_command(first) || (is_global_flag(first) && !first.starts_with("--rootless"));
}

int run_runtime(int argc, char** argv) {
    try {
        int next = 1;
        global_flags globals;
        try {
            globals = parse_globals(argc, argv, next);
        } catch (...) {
            // Still write where the caller reads: its --log and format.
            for (int i = 1; i + 1 < argc; ++i) {
                if (std::string_view(argv[i]) == "--log") globals.log_path = argv[i + 1];
                if (std::string_view(argv[i]) == "--log-format") globals.log_json = std::string_view(argv[i + 1]) == "json";
            }
            log().open(globals);
            throw;
        }
        log().open(globals);
        const command_line command = parse_command(argc, argv, next);
        if (command.name == "create") return create(globals, command, false);
        if (command.name == "run") return create(globals, command, true);
        if (command.name == "start") return start(globals, command);
        if (command.name == "kill") return kill_command(globals, command);
        if (command.name == "delete") return delete_command(globals, command);
        if (command.name == "state") return state_command(globals, command);
        if (command.name == "list") return list_command(globals, command);
        if (command.name == "exec") return exec_command(globals, command);
        if (command.name == "features") return features_command();
        if (command.name == "ps") return ps_command(globals, command);
        if (command.name == "pause") return freeze_command(globals, command, true);
        if (command.name == "resume") return freeze_command(globals, command, false);
        throw runtime_failure("unknown command '" + command.name + "'");
    } catch (const std::exception& e) {
        log().error(e.what());
        return 1;
    }
}

}  // namespace ctr_run::oci
