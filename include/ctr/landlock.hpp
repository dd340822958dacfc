#pragma once
// ctr::landlock: what files and TCP ports a command may use, enforced by the
// kernel's Landlock LSM (Linux 5.13 and later). No privilege, no namespace:
// any process may confine itself, and spawn applies a ruleset in the child
// right before no_new_privs and seccomp (docs/security.md, "Landlock").
//
//     auto rules = ctr::landlock::ruleset{}
//                      .execute("/usr")       // read and run
//                      .read("/etc")
//                      .write("/tmp/out")     // a tree the command may change
//                      .connect_tcp(443);
//     spawn(argv, {.security = {.landlock = rules}});
//
// A ruleset confines the filesystem once it has a path rule (or
// restrict_filesystem()): every file access outside the rules is denied,
// with EACCES. TCP is confined once it has a port rule (or restrict_tcp()).
// Paths are resolved in the child, after its mounts, as the command sees
// them; each must exist.
//
// Kernels differ (the Landlock ABI): best_effort, the default, drops what
// the kernel cannot enforce and dropped() says what that is; required makes
// spawn fail instead, naming the feature and the kernel it needs.

#include <ctr/detail/syscall.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ctr::landlock {

// A set of access rights on files (LANDLOCK_ACCESS_FS_*), the kernel's bits.
struct access {
    std::uint64_t bits = 0;
    friend constexpr access operator|(access a, access b) noexcept { return {a.bits | b.bits}; }
    friend constexpr access operator&(access a, access b) noexcept { return {a.bits & b.bits}; }
    friend constexpr bool operator==(access a, access b) noexcept = default;
    constexpr bool empty() const noexcept { return bits == 0; }
};

namespace fs {
// Each right, with the ABI that introduced it.
inline constexpr access execute{1ULL << 0};
inline constexpr access write_file{1ULL << 1};
inline constexpr access read_file{1ULL << 2};
inline constexpr access read_dir{1ULL << 3};
inline constexpr access remove_dir{1ULL << 4};
inline constexpr access remove_file{1ULL << 5};
inline constexpr access make_char{1ULL << 6};
inline constexpr access make_dir{1ULL << 7};
inline constexpr access make_reg{1ULL << 8};
inline constexpr access make_sock{1ULL << 9};
inline constexpr access make_fifo{1ULL << 10};
inline constexpr access make_block{1ULL << 11};
inline constexpr access make_sym{1ULL << 12};
inline constexpr access refer{1ULL << 13};      // ABI 2: rename or link into another directory
inline constexpr access truncate{1ULL << 14};   // ABI 3: truncate(2), O_TRUNC
inline constexpr access ioctl_dev{1ULL << 15};  // ABI 5: ioctl on character and block devices

// The groups the ruleset's shorthands use.
inline constexpr access read = read_file | read_dir;
inline constexpr access write = write_file | truncate;
inline constexpr access make = make_reg | make_dir | make_sym | make_sock | make_fifo;
inline constexpr access remove = remove_file | remove_dir;
// A tree the command may change: everything but device nodes and device ioctls.
inline constexpr access read_write = read | write | make | remove | refer;
// The rights that apply to a file that is not a directory.
inline constexpr access file_rights = execute | write_file | read_file | truncate | ioctl_dev;
}  // namespace fs

// What the kernel does with what it cannot enforce.
enum class mode : std::uint8_t {
    best_effort,  // drop it (ruleset::dropped() lists it) and enforce the rest
    required,     // spawn fails with a ctr::error naming it and the kernel it needs
};

struct path_rule {
    std::string path;
    access rights;
};

enum class tcp : std::uint8_t { bind = 1, connect = 2 };  // LANDLOCK_ACCESS_NET_*

struct port_rule {
    std::uint16_t port;
    tcp what;
};

class ruleset {
public:
    // Read files and list directories beneath `path`.
    template <class = void>
    ruleset& read(std::string path) { return allow(std::move(path), fs::read); }
    // Read and run: what /usr needs.
    template <class = void>
    ruleset& execute(std::string path) { return allow(std::move(path), fs::read | fs::execute); }
    // A tree the command may read and change: write, truncate, make and
    // remove files and directories, move them within the rules (fs::read_write).
    template <class = void>
    ruleset& write(std::string path) { return allow(std::move(path), fs::read_write); }
    // Any set of rights beneath `path`. On a file that is not a directory
    // only fs::file_rights apply; the rest are ignored there.
    template <class = void>
    ruleset& allow(std::string path, access rights) {
        paths_.push_back({std::move(path), rights});
        return *this;
    }
    // Listen on (bind) or connect to this TCP port (ABI 4, Linux 6.7).
    template <class = void>
    ruleset& bind_tcp(std::uint16_t port) {
        ports_.push_back({port, tcp::bind});
        return *this;
    }
    template <class = void>
    ruleset& connect_tcp(std::uint16_t port) {
        ports_.push_back({port, tcp::connect});
        return *this;
    }
    // Confine without a rule of the kind: no file access at all, or no TCP
    // bind and connect at all.
    ruleset& restrict_filesystem() noexcept {
        restrict_filesystem_ = true;
        return *this;
    }
    ruleset& restrict_tcp() noexcept {
        restrict_tcp_ = true;
        return *this;
    }
    // ABI 6, Linux 6.12: no connecting to abstract unix sockets made outside
    // the sandbox, no signals to processes outside it.
    ruleset& scope_abstract_unix_sockets() noexcept {
        scopes_ |= 1U;
        return *this;
    }
    ruleset& scope_signals() noexcept {
        scopes_ |= 2U;
        return *this;
    }
    // ABI 7, Linux 6.15: which of the sandbox's denials the kernel's audit
    // log records (where audit is on; what is denied stays the same). The
    // ruleset is applied in the child before it execs the command, and the
    // kernel's defaults follow that line: denials before the exec are
    // logged (ctr's last setup steps; log_same_exec(false) mutes them),
    // the command's own are not unless log_new_exec(true); sandboxes the
    // command makes inside this one are logged unless log_subdomains(false).
    // Passed as landlock_restrict_self's flags (LANDLOCK_RESTRICT_SELF_LOG_*).
    ruleset& log_same_exec(bool on) noexcept { return set_restrict_flag(log_same_exec_off, !on); }
    ruleset& log_new_exec(bool on) noexcept { return set_restrict_flag(log_new_exec_on, on); }
    ruleset& log_subdomains(bool on) noexcept { return set_restrict_flag(log_subdomains_off, !on); }
    ruleset& set_mode(landlock::mode m) noexcept {
        mode_ = m;
        return *this;
    }
    // Use no feature newer than this ABI, whatever the kernel has, so that
    // a ruleset means the same on every kernel (go-landlock's V1..Vn).
    ruleset& at_most_abi(int abi) noexcept {
        abi_limit_ = abi;
        return *this;
    }

    const std::vector<path_rule>& paths() const noexcept { return paths_; }
    const std::vector<port_rule>& ports() const noexcept { return ports_; }
    bool restricts_filesystem() const noexcept { return restrict_filesystem_ || !paths_.empty(); }
    bool restricts_tcp() const noexcept { return restrict_tcp_ || !ports_.empty(); }
    bool scopes_abstract_unix_sockets() const noexcept { return (scopes_ & 1U) != 0; }
    bool scopes_signals() const noexcept { return (scopes_ & 2U) != 0; }
    landlock::mode mode() const noexcept { return mode_; }
    int abi_limit() const noexcept { return abi_limit_; }
    // The flags the log switches give landlock_restrict_self (0: the kernel's defaults).
    std::uint32_t restrict_self_flags() const noexcept { return restrict_flags_; }

    // The kernel's values (linux/landlock.h).
    static constexpr std::uint32_t log_same_exec_off = 1U << 0;   // LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
    static constexpr std::uint32_t log_new_exec_on = 1U << 1;     // LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
    static constexpr std::uint32_t log_subdomains_off = 1U << 2;  // LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF

    // What a kernel with Landlock ABI `abi` (0: none) could not enforce of
    // this ruleset, one line each, with the ABI and kernel it needs. Empty:
    // all of it. Defined below.
    template <class = void>
    std::vector<std::string> dropped(int abi) const;
    // The same against this kernel.
    template <class = void>
    std::vector<std::string> dropped() const;

private:
    ruleset& set_restrict_flag(std::uint32_t flag, bool set) noexcept {
        restrict_flags_ = set ? restrict_flags_ | flag : restrict_flags_ & ~flag;
        return *this;
    }

    std::vector<path_rule> paths_;
    std::vector<port_rule> ports_;
    bool restrict_filesystem_ = false;
    bool restrict_tcp_ = false;
    unsigned scopes_ = 0;
    std::uint32_t restrict_flags_ = 0;
    landlock::mode mode_ = landlock::mode::best_effort;
    int abi_limit_ = 0;  // 0: none
};

// The kernel's Landlock ABI version: 1 (Linux 5.13) and up, 0 when the
// kernel has none or it is disabled at boot.
template <class = void>
inline int abi() noexcept {
    const long version = detail::sys::landlock_create_ruleset(nullptr, 0, 1U);  // LANDLOCK_CREATE_RULESET_VERSION
    return version > 0 ? static_cast<int>(version) : 0;
}

namespace detail {

// The kernel's structures (linux/landlock.h), defined here because the
// installed header may predate the kernel: the ruleset's attributes grew
// with ABI 4 (handled_access_net) and ABI 6 (scoped); a kernel reads the
// fields it knows and requires the rest to be zero.
struct ruleset_attr {
    std::uint64_t handled_access_fs = 0;
    std::uint64_t handled_access_net = 0;
    std::uint64_t scoped = 0;
};
struct [[gnu::packed]] path_beneath_attr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
};
struct net_port_attr {
    std::uint64_t allowed_access;
    std::uint64_t port;
};
inline constexpr int rule_path_beneath = 1;
inline constexpr int rule_net_port = 2;

// What each ABI added, and the first Linux release with it.
struct abi_feature {
    int abi;
    const char* kernel;
    const char* what;
};
inline constexpr abi_feature abi_features[] = {
    {1, "5.13", "files: read, write, execute, make and remove"},
    {2, "5.19", "refer: moving and linking files between directories"},
    {3, "6.2", "truncate"},
    {4, "6.7", "TCP bind and connect ports"},
    {5, "6.10", "ioctl on devices"},
    {6, "6.12", "scoped abstract unix sockets and signals"},
    {7, "6.15", "audit logging of denials"},
};

// The file rights an ABI knows.
constexpr std::uint64_t file_rights_of(int abi) noexcept {
    if (abi < 1) return 0;
    std::uint64_t bits = (1ULL << 13) - 1;  // execute .. make_sym
    if (abi >= 2) bits |= fs::refer.bits;
    if (abi >= 3) bits |= fs::truncate.bits;
    if (abi >= 5) bits |= fs::ioctl_dev.bits;
    return bits;
}

// What a kernel with `kernel_abi` enforces of a ruleset, and what it cannot.
struct fit {
    int abi = 0;  // the ABI used: the kernel's, or the ruleset's limit
    ruleset_attr attr{};
    std::uint32_t restrict_self_flags = 0;  // what landlock_restrict_self is given
    std::vector<std::string> missing;
};

template <class = void>
fit fit_ruleset(const ruleset& rules, int kernel_abi) {
    fit out;
    out.abi = rules.abi_limit() > 0 && rules.abi_limit() < kernel_abi ? rules.abi_limit() : kernel_abi;
    const int abi = out.abi;
    const auto has = [&](int needed, const char* what) {
        if (abi >= needed) return true;
        const abi_feature& f = abi_features[needed - 1];
        std::string line = std::string(what) + ": needs Landlock ABI " + std::to_string(needed) + " (Linux " +
                           f.kernel + "); ";
        if (abi != kernel_abi) line += "the ruleset allows at most ABI " + std::to_string(abi);
        else if (abi == 0) line += "this kernel has no Landlock, or it is disabled at boot";
        else line += "this kernel has ABI " + std::to_string(abi);
        out.missing.push_back(std::move(line));
        return false;
    };
    if (rules.restricts_filesystem() && has(1, "file rules")) {
        out.attr.handled_access_fs = file_rights_of(abi);
        std::uint64_t named = 0;
        for (const path_rule& rule : rules.paths()) named |= rule.rights.bits;
        if ((named & fs::refer.bits) != 0)
            has(2, "refer (without it, moving or linking a file between directories is always denied)");
        has(3, "truncate (without it, truncate(2) and O_TRUNC are not confined)");
        has(5, "ioctl_dev (without it, ioctl on devices is not confined)");
    }
    if (rules.restricts_tcp() && has(4, "TCP port rules")) out.attr.handled_access_net = 3;
    if (rules.scopes_abstract_unix_sockets() && has(6, "scoped abstract unix sockets")) out.attr.scoped |= 1;
    if (rules.scopes_signals() && has(6, "scoped signals")) out.attr.scoped |= 2;
    // A kernel before ABI 7 refuses any flag (EINVAL): best effort keeps the
    // kernel's logging defaults there.
    if (rules.restrict_self_flags() != 0 &&
        has(7, "audit log switches (log_same_exec, log_new_exec, log_subdomains)"))
        out.restrict_self_flags = rules.restrict_self_flags();
    return out;
}

}  // namespace detail

template <class>
std::vector<std::string> ruleset::dropped(int kernel_abi) const {
    return detail::fit_ruleset(*this, kernel_abi).missing;
}
template <class>
std::vector<std::string> ruleset::dropped() const {
    return dropped(landlock::abi());
}

}  // namespace ctr::landlock
