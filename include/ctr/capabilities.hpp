#pragma once
// ctr::capability and ctr::caps: Linux capabilities as values (names, sets,
// the default set) and the capability policy a launch applies to its child.
//
// The child side (the order of the kernel calls and why) lives in
// detail/capability_step.hpp; this header only describes what is wanted.

#include <ctr/detail/file.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

#include <sys/prctl.h>

#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace ctr {

// Every capability Linux has, by its kernel number (linux/capability.h).
enum class capability : std::uint8_t {
    chown = 0,
    dac_override = 1,
    dac_read_search = 2,
    fowner = 3,
    fsetid = 4,
    kill = 5,
    setgid = 6,
    setuid = 7,
    setpcap = 8,
    linux_immutable = 9,
    net_bind_service = 10,
    net_broadcast = 11,
    net_admin = 12,
    net_raw = 13,
    ipc_lock = 14,
    ipc_owner = 15,
    sys_module = 16,
    sys_rawio = 17,
    sys_chroot = 18,
    sys_ptrace = 19,
    sys_pacct = 20,
    sys_admin = 21,
    sys_boot = 22,
    sys_nice = 23,
    sys_resource = 24,
    sys_time = 25,
    sys_tty_config = 26,
    mknod = 27,
    lease = 28,
    audit_write = 29,
    audit_control = 30,
    setfcap = 31,
    mac_override = 32,
    mac_admin = 33,
    syslog = 34,
    wake_alarm = 35,
    block_suspend = 36,
    audit_read = 37,
    perfmon = 38,
    bpf = 39,
    checkpoint_restore = 40,
};

namespace detail {

inline constexpr std::array<std::string_view, 41> capability_names{
    "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

constexpr char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

constexpr bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
    return true;
}

constexpr std::string_view trim_spaces(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

}  // namespace detail

namespace caps {

// The capability numbers a set can hold: the kernel's masks are 64 bits.
inline constexpr unsigned max_number = 63;
// The last capability this header knows (CAP_CHECKPOINT_RESTORE, Linux 5.9).
inline constexpr capability last_known = capability::checkpoint_restore;

// "CAP_CHOWN" for capability::chown; an empty view for a number past
// last_known, which only a newer kernel would name.
constexpr std::string_view name(capability c) noexcept {
    const auto number = static_cast<std::size_t>(c);
    return number < detail::capability_names.size() ? detail::capability_names[number] : std::string_view{};
}

// The capability a name stands for, with or without the CAP_ prefix, in any
// case: "CAP_NET_BIND_SERVICE", "net_bind_service". Numbers are parse's job.
constexpr std::optional<capability> from_name(std::string_view text) noexcept {
    if (text.size() > 4 && detail::equal_ignoring_case(text.substr(0, 4), "CAP_")) text.remove_prefix(4);
    for (std::size_t i = 0; i < detail::capability_names.size(); ++i)
        if (detail::equal_ignoring_case(detail::capability_names[i].substr(4), text))
            return static_cast<capability>(i);
    return std::nullopt;
}

// A name as from_name takes it, or a decimal number from 0 to 63 (numbers
// past last_known are for capabilities newer than this header). Anything
// else throws ctr::error(step::prepare, EINVAL) naming the text.
template <class = void>
inline capability parse(std::string_view text) {
    if (const auto known = from_name(text)) return *known;
    unsigned number = 0;
    const char* const end = text.data() + text.size();
    const auto [next, ec] = std::from_chars(text.data(), end, number);
    if (!text.empty() && ec == std::errc{} && next == end && number <= max_number)
        return static_cast<capability>(number);
    throw error(step::prepare, EINVAL, std::string(text),
                "unknown capability: names look like CAP_NET_BIND_SERVICE or net_bind_service, numbers go from 0 "
                "to 63");
}

// A set of capabilities: a 64-bit mask, bit N for capability number N, the
// layout the kernel uses for its own sets.
class set {
public:
    // Walks the members from the lowest number up; allocates nothing.
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = capability;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = capability;

        constexpr iterator() noexcept = default;
        constexpr explicit iterator(std::uint64_t rest) noexcept : rest_(rest) {}
        constexpr capability operator*() const noexcept { return static_cast<capability>(std::countr_zero(rest_)); }
        constexpr iterator& operator++() noexcept {
            rest_ &= rest_ - 1;
            return *this;
        }
        constexpr iterator operator++(int) noexcept {
            iterator before = *this;
            ++*this;
            return before;
        }
        friend constexpr bool operator==(iterator, iterator) noexcept = default;

    private:
        std::uint64_t rest_ = 0;
    };

    constexpr set() noexcept = default;
    // One capability is a set of one, so a policy can say `.ambient = capability::net_bind_service`.
    constexpr set(capability c) noexcept : bits_(bit(c)) {}
    constexpr set(std::initializer_list<capability> members) noexcept {
        for (const capability c : members) bits_ |= bit(c);
    }
    static constexpr set from_bits(std::uint64_t bits) noexcept {
        set out;
        out.bits_ = bits;
        return out;
    }
    // Every capability this header knows, 0 to last_known.
    static constexpr set all() noexcept {
        return from_bits((std::uint64_t{1} << (static_cast<unsigned>(last_known) + 1)) - 1);
    }
    static constexpr set none() noexcept { return {}; }

    // "CAP_CHOWN,CAP_KILL" (items as parse takes them, spaces around them
    // allowed), "ALL" for all(), "" for none. A bad item throws as parse does.
    template <class = void>
    static set parse_list(std::string_view text) {
        set out;
        if (detail::trim_spaces(text).empty()) return out;
        for (;;) {
            const std::size_t comma = text.find(',');
            const std::string_view item = detail::trim_spaces(text.substr(0, comma));
            if (item.empty())
                throw error(step::prepare, EINVAL, std::string(text),
                            "empty item in a capability list: write CAP_CHOWN,CAP_KILL");
            if (detail::equal_ignoring_case(item, "ALL")) out |= all();
            else out.add(parse(item));
            if (comma == std::string_view::npos) break;
            text.remove_prefix(comma + 1);
        }
        return out;
    }

    constexpr set& add(capability c) noexcept {
        bits_ |= bit(c);
        return *this;
    }
    constexpr set& remove(capability c) noexcept {
        bits_ &= ~bit(c);
        return *this;
    }
    constexpr bool has(capability c) const noexcept { return (bits_ & bit(c)) != 0; }
    // Whether every member of `other` is here too.
    constexpr bool contains(set other) const noexcept { return (other.bits_ & ~bits_) == 0; }
    constexpr bool empty() const noexcept { return bits_ == 0; }
    constexpr unsigned size() const noexcept { return static_cast<unsigned>(std::popcount(bits_)); }
    constexpr std::uint64_t bits() const noexcept { return bits_; }

    constexpr iterator begin() const noexcept { return iterator(bits_); }
    constexpr iterator end() const noexcept { return iterator(0); }

    // "CAP_CHOWN,CAP_KILL", lowest number first; a number past last_known
    // is written as its number, so parse_list reads the text back. "" for none.
    template <class = void>
    std::string to_string() const {
        std::string out;
        for (const capability c : *this) {
            if (!out.empty()) out += ',';
            if (const std::string_view known = name(c); !known.empty()) out += known;
            else out += std::to_string(static_cast<unsigned>(c));
        }
        return out;
    }

    constexpr set& operator|=(set other) noexcept {
        bits_ |= other.bits_;
        return *this;
    }
    constexpr set& operator&=(set other) noexcept {
        bits_ &= other.bits_;
        return *this;
    }
    constexpr set& operator-=(set other) noexcept {
        bits_ &= ~other.bits_;
        return *this;
    }
    friend constexpr set operator|(set a, set b) noexcept { return a |= b; }
    friend constexpr set operator&(set a, set b) noexcept { return a &= b; }
    // The members of a that are not in b.
    friend constexpr set operator-(set a, set b) noexcept { return a -= b; }
    friend constexpr bool operator==(set, set) noexcept = default;

private:
    static constexpr std::uint64_t bit(capability c) noexcept {
        return std::uint64_t{1} << (static_cast<unsigned>(c) & max_number);
    }

    std::uint64_t bits_ = 0;
};

// What a container gets unless it asks for more or less: the set Podman 4
// gives by default. Each one is there because ordinary images need it while
// setting up as root inside their own user namespace:
//   CHOWN, FOWNER, FSETID, DAC_OVERRIDE  package managers and install scripts
//                        chown and chmod files they do not own, and keep the
//                        setuid bit across a chown;
//   SETUID, SETGID       su, sudo, gosu, and servers that drop to a user;
//   SETPCAP              the same programs lowering their own bounding set;
//   SETFCAP              installing binaries with file capabilities (ping);
//   KILL                 signalling processes of other users in the container;
//   NET_BIND_SERVICE     servers listening on ports below 1024;
//   SYS_CHROOT           chroot-based tools (package builds, sshd privsep).
// Docker adds three more, which Podman 4 dropped and ctr leaves out too:
// AUDIT_WRITE (records in the host's audit log, which only login tools
// write), MKNOD (device nodes: the mount layer makes the few a container
// needs, and a node made inside could open a host device that nothing else
// fences) and NET_RAW (raw sockets, a tool for ARP and DNS spoofing on a
// shared bridge; ping uses ICMP datagram sockets today).
constexpr set default_set() noexcept {
    return {capability::chown,    capability::dac_override, capability::fowner,
            capability::fsetid,   capability::kill,         capability::net_bind_service,
            capability::setfcap,  capability::setgid,       capability::setpcap,
            capability::setuid,   capability::sys_chroot};
}

// The number of the last capability the running kernel has, from
// /proc/sys/kernel/cap_last_cap; without /proc, found by asking the kernel
// about each number (PR_CAPBSET_READ fails past the last); 40 when neither
// answers. Parent side. The kernel's number does not change while it runs:
// read once per process (every confined spawn asks).
template <class = void>
inline unsigned last_supported() {
    static const unsigned last = [] {
        if (const auto line = detail::read_first_line("/proc/sys/kernel/cap_last_cap")) {
            unsigned number = 0;
            const char* const end = line->data() + line->size();
            const auto [next, ec] = std::from_chars(line->data(), end, number);
            if (ec == std::errc{} && next == end && number <= max_number) return number;
        }
        if (detail::sys::prctl(PR_CAPBSET_READ, 0) >= 0) {
            unsigned found = 0;
            while (found < max_number && detail::sys::prctl(PR_CAPBSET_READ, found + 1) >= 0) ++found;
            return found;
        }
        return static_cast<unsigned>(last_known);
    }();
    return last;
}

// Every capability the running kernel has: all() on a kernel as new as this
// header, fewer on an older one. `keep = supported()` keeps all there is.
template <class = void>
inline set supported() {
    const unsigned last = last_supported();
    return set::from_bits(last >= max_number ? ~std::uint64_t{0} : (std::uint64_t{1} << (last + 1)) - 1);
}

// The capabilities a launched process ends up with. After setup, before
// exec:
//   bounding, permitted, effective  exactly `keep` (what the launch had, less
//                                   everything else); empty keeps nothing;
//   inheritable                     inheritable | ambient;
//   ambient                         ambient;
//   securebits                      set to *securebits (SECBIT_* from
//                                   linux/securebits.h) when given.
// `inheritable` and `ambient` must be subsets of `keep`: the kernel raises an
// ambient capability only while it is permitted and inheritable, and refuses
// an inheritable one outside the bounding set.
// Across exec the kernel's rules apply: uid 0 (without SECBIT_NOROOT) gets
// `keep` again; any other uid keeps only `ambient`, plus the file
// capabilities of the program within `keep`.
struct policy {
    set keep{};
    set inheritable{};
    set ambient{};
    std::optional<unsigned> securebits{};
};

}  // namespace caps
}  // namespace ctr
