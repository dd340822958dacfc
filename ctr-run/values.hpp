#pragma once
// ctr-run's values: sizes, durations, volumes, tmpfs options and the other
// things a flag's value can be, parsed without touching the system. A bad
// value throws usage_error (one line naming the flag, exit 125) and nothing
// else: tests/fuzz/ctr_run_flags.cpp holds the parsers to that.

#include <ctr/landlock.hpp>
#include <ctr/mount.hpp>

#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr_run {

// A bad flag or value: one line naming the flag, exit 125.
struct usage_error {
    std::string flag;
    std::string message;
};

[[noreturn]] inline void bad_value(std::string_view flag, std::string message) {
    throw usage_error{std::string(flag), std::move(message)};
}

struct volume {
    std::string source, target;
    bool read_only = false;
};

struct tmpfs_mount {
    std::string target;
    ctr::mount::tmpfs_options options;
};


// ---- values ----------------------------------------------------------------

inline std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A non-negative decimal number with an optional fraction, and what follows it.
inline std::optional<std::pair<double, std::string_view>> leading_number(std::string_view text) {
    std::size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    if (end == 0) return std::nullopt;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value)) return std::nullopt;
    return std::pair{value, text.substr(end)};
}

// Docker's sizes: a number of bytes, or with b, k, m, g, t (binary units,
// any case, an optional trailing "b": 64m, 64MB, 1.5g).
inline std::uint64_t parse_size(std::string_view flag, std::string_view text) {
    const auto fail = [&] {
        bad_value(flag, "'" + std::string(text) + "' is not a size (examples: 1048576, 512k, 64m, 1.5g)");
    };
    const auto number = leading_number(text);
    if (!number) fail();
    std::string unit = lower(number->second);
    if (unit.size() == 2 && unit[1] == 'b' && unit[0] != 'b') unit.pop_back();
    double scale = 1;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k") scale = 1024.0;
    else if (unit == "m") scale = 1024.0 * 1024;
    else if (unit == "g") scale = 1024.0 * 1024 * 1024;
    else if (unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
    else fail();
    const double bytes = std::floor(number->first * scale);
    if (bytes < 1 || bytes > 9.2e18) bad_value(flag, "'" + std::string(text) + "' is out of range");
    return static_cast<std::uint64_t>(bytes);
}

// Seconds, fractions allowed, or with a unit: 1.5, 500ms, 10s, 2m, 1h.
inline std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
    const auto number = leading_number(text);
    const std::string unit = number ? lower(number->second) : "";
    double scale = 0;
    if (unit.empty() || unit == "s") scale = 1000;
    else if (unit == "ms") scale = 1;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    if (!number || scale == 0)
        bad_value(flag, "'" + std::string(text) + "' is not a duration (seconds, or with a unit: 1.5, 500ms, 2m)");
    const double ms = std::ceil(number->first * scale);
    if (ms < 1 || ms > 1e12) bad_value(flag, "'" + std::string(text) + "' is out of range (at least 1ms)");
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

template <typename Int>
std::optional<Int> parse_integer(std::string_view text) {
    Int value{};
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

inline std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

inline void require_absolute(std::string_view flag, std::string_view path, std::string_view what) {
    if (path.empty() || path[0] != '/')
        bad_value(flag, std::string(what) + " '" + std::string(path) + "' must be an absolute path");
}

inline volume parse_volume(std::string_view flag, std::string_view text) {
    const auto parts = split(text, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty())
        bad_value(flag, "'" + std::string(text) + "' is not SRC:DST[:ro|rw]");
    volume v{std::string(parts[0]), std::string(parts[1])};
    // Docker reads a relative source as a named volume, which ctr-run does not have.
    require_absolute(flag, v.source, "the source");
    require_absolute(flag, v.target, "the destination");
    if (parts.size() == 3) {
        for (auto option : split(parts[2], ',')) {
            if (option == "ro") v.read_only = true;
            else if (option == "rw") v.read_only = false;
            else bad_value(flag, "unknown volume option '" + std::string(option) + "' (ro or rw)");
        }
    }
    return v;
}

inline tmpfs_mount parse_tmpfs(std::string_view flag, std::string_view text) {
    const auto colon = text.find(':');
    tmpfs_mount t{std::string(text.substr(0, colon)), {.mode = 01777}};
    require_absolute(flag, t.target, "the destination");
    if (colon == std::string_view::npos) return t;
    for (auto option : split(text.substr(colon + 1), ',')) {
        if (option.starts_with("size=")) {
            // Docker's sizes, handed to tmpfs in bytes; "%" is tmpfs's own.
            const auto size = option.substr(5);
            if (size.ends_with('%')) {
                const auto percent = size.substr(0, size.size() - 1);
                if (percent.empty() || percent.find_first_not_of("0123456789") != std::string_view::npos)
                    bad_value(flag, "size '" + std::string(size) + "' is not a size or a percentage (64m, 50%)");
            }
            t.options.size = size.ends_with('%') ? std::string(size) : std::to_string(parse_size(flag, size));
        } else if (option.starts_with("mode=")) {
            const auto mode = option.substr(5);
            unsigned value = 0;
            const auto [ptr, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), value, 8);
            if (ec != std::errc() || ptr != mode.data() + mode.size() || mode.empty() || value > 07777)
                bad_value(flag, "mode '" + std::string(mode) + "' is not an octal mode");
            t.options.mode = value;
        } else if (option == "ro") t.options.read_only = true;
        else if (option == "rw") t.options.read_only = false;
        else if (option == "noexec") t.options.noexec = true;
        else if (option == "exec") t.options.noexec = false;
        else if (option == "nosuid") t.options.nosuid = true;
        else if (option == "suid") t.options.nosuid = false;
        else if (option == "nodev") t.options.nodev = true;
        else if (option == "dev") t.options.nodev = false;
        else bad_value(flag, "unknown tmpfs option '" + std::string(option) +
                                 "' (size=, mode=, ro, rw, noexec, exec, nosuid, suid, nodev, dev)");
    }
    return t;
}

// --mount type=bind|tmpfs,...: Docker's long form, as a volume or a tmpfs.
// type=volume (named volumes) is refused: ctr-run has no volume store.
struct mount_flag {
    std::optional<volume> bind;
    std::optional<tmpfs_mount> tmpfs;
};

inline bool parse_bool_option(std::string_view flag, std::string_view key, std::string_view value) {
    if (value.empty() || value == "true" || value == "1") return true;
    if (value == "false" || value == "0") return false;
    bad_value(flag, "'" + std::string(key) + "=" + std::string(value) + "' is not true or false");
}

inline mount_flag parse_mount(std::string_view flag, std::string_view text) {
    std::string type, source, target;
    bool read_only = false;
    std::optional<std::string> size, mode;
    for (auto field : split(text, ',')) {
        const auto eq = field.find('=');
        const std::string_view key = field.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view{} : field.substr(eq + 1);
        if (key == "type") type = std::string(value);
        else if (key == "source" || key == "src") source = std::string(value);
        else if (key == "destination" || key == "dst" || key == "target") target = std::string(value);
        else if (key == "readonly" || key == "ro") read_only = parse_bool_option(flag, key, value);
        else if (key == "tmpfs-size") size = std::string(value);
        else if (key == "tmpfs-mode") mode = std::string(value);
        else if (key == "bind-propagation" && (value == "rprivate" || value == "private")) {
            // ctr's mounts are private already.
        } else
            bad_value(flag, "'" + std::string(field) +
                                "' is not supported (type=, source=, target=, readonly, tmpfs-size=, tmpfs-mode=; "
                                "bind-propagation=rprivate is what ctr-run does)");
    }
    if (type == "volume")
        bad_value(flag, "type=volume is not supported: ctr-run has no named volumes (use type=bind with a host directory)");
    if (type != "bind" && type != "tmpfs")
        bad_value(flag, "'" + std::string(text) + "' needs type=bind or type=tmpfs");
    if (target.empty()) bad_value(flag, "'" + std::string(text) + "' needs target=");
    mount_flag m;
    if (type == "bind") {
        if (size || mode) bad_value(flag, "tmpfs-size and tmpfs-mode go with type=tmpfs");
        if (source.empty()) bad_value(flag, "'" + std::string(text) + "' needs source= with type=bind");
        m.bind = parse_volume(flag, source + ":" + target + (read_only ? ":ro" : ""));
        return m;
    }
    if (!source.empty()) bad_value(flag, "type=tmpfs takes no source");
    std::string options = read_only ? "ro" : "";
    if (size) options += (options.empty() ? "" : ",") + std::string("size=") + *size;
    if (mode) options += (options.empty() ? "" : ",") + std::string("mode=") + *mode;
    m.tmpfs = parse_tmpfs(flag, target + (options.empty() ? "" : ":" + options));
    return m;
}

// --ulimit NAME=SOFT[:HARD]: Docker's names, -1 or "unlimited" for no limit.
struct ulimit {
    std::string name;
    int resource;
    rlim_t soft, hard;
};

inline ulimit parse_ulimit(std::string_view flag, std::string_view text) {
    static constexpr std::pair<std::string_view, int> names[] = {
        {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},
        {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},     {"locks", RLIMIT_LOCKS},
        {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
        {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},
        {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING},
        {"stack", RLIMIT_STACK}};
    const auto eq = text.find('=');
    const std::string_view name = text.substr(0, eq);
    int resource = -1;
    for (const auto& [n, r] : names)
        if (n == name) resource = r;
    if (eq == std::string_view::npos || resource < 0)
        bad_value(flag, "'" + std::string(text) +
                            "' is not NAME=SOFT[:HARD] (names: as, core, cpu, data, fsize, locks, memlock, msgqueue, "
                            "nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)");
    const auto value = [&](std::string_view v) -> rlim_t {
        if (v == "-1" || v == "unlimited") return RLIM_INFINITY;
        const auto n = parse_integer<std::uint64_t>(v);
        if (!n || *n >= RLIM_INFINITY) bad_value(flag, "'" + std::string(text) + "': '" + std::string(v) + "' is not a limit (a number, -1 or unlimited)");
        return static_cast<rlim_t>(*n);
    };
    const auto values = split(text.substr(eq + 1), ':');
    if (values.size() > 2) bad_value(flag, "'" + std::string(text) + "' is not NAME=SOFT[:HARD]");
    ulimit u{std::string(name), resource, value(values[0]), 0};
    u.hard = values.size() == 2 ? value(values[1]) : u.soft;
    if (u.soft > u.hard) bad_value(flag, "'" + std::string(text) + "': the soft limit is above the hard one");
    return u;
}

// --device SRC[:DST][:PERMISSIONS]: a host device node bound into /dev.
struct device {
    std::string source, target;
};

inline device parse_device(std::string_view flag, std::string_view text) {
    auto parts = split(text, ':');
    const auto is_permissions = [](std::string_view p) {
        return !p.empty() && p.size() <= 3 && p.find_first_not_of("rwm") == std::string_view::npos;
    };
    std::string_view permissions = "rwm";
    if (parts.size() >= 2 && is_permissions(parts.back())) {
        permissions = parts.back();
        parts.pop_back();
    }
    if (parts.empty() || parts.size() > 2) bad_value(flag, "'" + std::string(text) + "' is not SRC[:DST][:rwm]");
    device d{std::string(parts[0]), std::string(parts.size() == 2 ? parts[1] : parts[0])};
    require_absolute(flag, d.source, "the device");
    require_absolute(flag, d.target, "the destination");
    // Docker narrows access with a device cgroup rule; ctr-run makes none,
    // so a narrower access would be a promise it does not keep.
    if (std::set<char>(permissions.begin(), permissions.end()) != std::set<char>{'r', 'w', 'm'})
        bad_value(flag, "permissions '" + std::string(permissions) +
                            "' are not supported: ctr-run sets no device cgroup rules, so the device is always rwm");
    return d;
}

// A signal by name (TERM, SIGTERM, any case) or number.
inline int parse_signal(std::string_view flag, std::string_view text) {
    static constexpr std::pair<std::string_view, int> names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
        {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},
        {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
        {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
        {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
        {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},     {"SYS", SIGSYS}};
    if (const auto n = parse_integer<int>(text)) {
        if (*n >= 1 && *n <= 64) return *n;
    } else {
        std::string upper(text);
        for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        const std::string_view name = std::string_view(upper).starts_with("SIG") ? std::string_view(upper).substr(3)
                                                                                 : std::string_view(upper);
        for (const auto& [signal_name, sig] : names)
            if (signal_name == name) return sig;
    }
    bad_value(flag, "'" + std::string(text) + "' is not a signal (TERM, SIGUSR1, 15)");
}

// An IPv4 or IPv6 address, as inet_pton takes it.
inline bool is_ip_address(std::string_view text) {
    const std::string s(text);
    unsigned char buffer[16];
    return inet_pton(AF_INET, s.c_str(), buffer) == 1 || inet_pton(AF_INET6, s.c_str(), buffer) == 1;
}

// --add-host NAME:IP (or NAME=IP): a line of the sandbox's /etc/hosts.
inline std::pair<std::string, std::string> parse_add_host(std::string_view flag, std::string_view text) {
    auto at = text.find('=');
    if (at == std::string_view::npos) at = text.find(':');
    const std::string_view name = text.substr(0, at);
    std::string_view address = at == std::string_view::npos ? std::string_view{} : text.substr(at + 1);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') address = address.substr(1, address.size() - 2);
    if (name.empty() || name.find_first_of(" \t\n#") != std::string_view::npos || at == std::string_view::npos)
        bad_value(flag, "'" + std::string(text) + "' is not NAME:IP");
    if (address == "host-gateway")
        bad_value(flag, "host-gateway is not supported: ctr-run has no bridge (with --network veth the host end is the default route)");
    if (!is_ip_address(address)) bad_value(flag, "'" + std::string(address) + "' is not an IP address");
    return {std::string(name), std::string(address)};
}

// The CPUs of a list "0-3,6". Bad syntax is a usage error.
inline std::set<unsigned> parse_cpu_list(std::string_view flag, std::string_view text) {
    std::set<unsigned> cpus;
    const auto fail = [&](const std::string& why) { bad_value(flag, "'" + std::string(text) + "' " + why); };
    if (text.empty() || text.find_first_not_of("0123456789,-") != std::string_view::npos) fail("is not a CPU list (0-3,6)");
    for (auto part : split(text, ',')) {
        const auto dash = part.find('-');
        const auto first = parse_integer<unsigned>(part.substr(0, dash));
        const auto last = dash == std::string_view::npos ? first : parse_integer<unsigned>(part.substr(dash + 1));
        if (!first || !last) fail("is not a CPU list (0-3,6)");
        if (*last < *first) fail("runs backwards (" + std::string(part) + ")");
        if (*last >= 8192) fail("names a CPU beyond 8191");
        for (unsigned cpu = *first; cpu <= *last; ++cpu) cpus.insert(cpu);
    }
    return cpus;
}

// "0-3,6" for a set of CPUs.
inline std::string format_cpu_list(const std::set<unsigned>& cpus) {
    std::string out;
    for (auto it = cpus.begin(); it != cpus.end();) {
        unsigned first = *it, last = *it;
        while (++it != cpus.end() && *it == last + 1) last = *it;
        if (!out.empty()) out += ',';
        out += std::to_string(first);
        if (last != first) out += '-' + std::to_string(last);
    }
    return out;
}

// A name as Docker takes it for --name: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
inline bool is_container_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
    });
}

// A user or group name as useradd takes it.
inline bool is_account_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name[0] == '-' || std::isdigit(static_cast<unsigned char>(name[0])))
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char ch = name[i];
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-' ||
              (ch == '$' && i + 1 == name.size())))
            return false;
    }
    return true;
}

// -u USER[:GROUP]: each a name (looked up in the sandbox's /etc/passwd and
// /etc/group when the run starts) or a numeric id.
struct user_spec {
    std::string user, group;  // as given; group empty: the user's own
};

inline user_spec parse_user(std::string_view flag, std::string_view text) {
    const auto colon = text.find(':');
    user_spec u{std::string(text.substr(0, colon)),
                colon == std::string_view::npos ? std::string() : std::string(text.substr(colon + 1))};
    const auto valid = [](const std::string& part) {
        if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos)
            return parse_integer<std::uint32_t>(part).has_value();
        return is_account_name(part);
    };
    if (!valid(u.user) || (colon != std::string_view::npos && !valid(u.group)))
        bad_value(flag, "'" + std::string(text) + "' is not USER[:GROUP] (names or numeric ids)");
    return u;
}


// ---- Landlock ----------------------------------------------------------

// --landlock and --security-opt landlock=: Landlock rules on paths as the
// sandbox sees them and on TCP ports, over ctr-run's default rules unless
// no-defaults (sandbox.hpp, landlock_ruleset).
struct landlock_request {
    bool enabled = false;
    bool defaults = true;
    std::vector<ctr::landlock::path_rule> paths;
    std::vector<ctr::landlock::port_rule> ports;
};

inline constexpr std::string_view landlock_rule_forms =
    "ro=PATH, rx=PATH, rw=PATH, rwx=PATH, connect=PORT, bind=PORT, defaults or no-defaults";

// A comma list of rules: ro=/src,rw=/out,connect=443. Each flag adds to
// what the earlier ones said.
inline void parse_landlock(std::string_view flag, std::string_view text, landlock_request& into) {
    namespace fs = ctr::landlock::fs;
    if (text.empty()) bad_value(flag, std::string("needs Landlock rules (") + std::string(landlock_rule_forms) + ")");
    for (const std::string_view item : split(text, ',')) {
        const auto eq = item.find('=');
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        const auto path_rule = [&](ctr::landlock::access rights) {
            if (value.empty() || value[0] != '/')
                bad_value(flag, "'" + std::string(item) + "': the path '" + std::string(value) +
                                    "' must be an absolute path, as the sandbox sees it");
            into.paths.push_back({std::string(value), rights});
        };
        if (eq == std::string_view::npos && item == "defaults") {
        } else if (eq == std::string_view::npos && item == "no-defaults") {
            into.defaults = false;
        } else if (key == "ro") path_rule(fs::read);
        else if (key == "rx") path_rule(fs::read | fs::execute);
        else if (key == "rw") path_rule(fs::read_write);
        else if (key == "rwx") path_rule(fs::read_write | fs::execute);
        else if (eq != std::string_view::npos && (key == "connect" || key == "bind")) {
            const auto port = parse_integer<std::uint16_t>(value);
            if (!port) bad_value(flag, "'" + std::string(item) + "': '" + std::string(value) + "' is not a TCP port (0 to 65535)");
            into.ports.push_back({*port, key == "bind" ? ctr::landlock::tcp::bind : ctr::landlock::tcp::connect});
        } else
            bad_value(flag, "'" + std::string(item) + "' is not a Landlock rule (" + std::string(landlock_rule_forms) + ")");
    }
    into.enabled = true;
}

}  // namespace ctr_run
