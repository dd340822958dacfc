#pragma once
// Pure text handling for cgroups: human sizes, CPU lists, the kernel's
// "key value" files, io.max lines, and the names ctr gives its groups.
// Nothing here touches the file system, so all of it is unit-tested.

#include <ctr/detail/cgroup_layout.hpp>
#include <ctr/error.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::detail {

// What "max" means in a parsed value.
inline constexpr std::uint64_t cgroup_unlimited = std::numeric_limits<std::uint64_t>::max();

template <class = void>
inline std::string_view cgroup_trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) text.remove_suffix(1);
    return text;
}

// A plain decimal number; nothing for anything else or on overflow.
template <class = void>
inline std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (cgroup_unlimited - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// A byte count as people write it: "1048576", "512k", "64M", "1.5G", "2TiB",
// "max". Units are binary (K = 1024), as in the kernel's own memparse; an
// optional "i" and "B" after the letter are accepted. Throws
// ctr::error(set_cgroup_limit, EINVAL) naming `what` and the text.
template <class = void>
inline std::uint64_t parse_size(std::string_view text, std::string_view what = "size") {
    const auto fail = [&](std::string_view why) -> std::uint64_t {
        throw error(step::set_cgroup_limit, EINVAL, std::string(what),
                    "bad size '" + std::string(text) + "': " + std::string(why)
                        + "; write a number of bytes with an optional K, M, G, T, P or E suffix, or 'max'");
    };
    std::string_view t = cgroup_trim(text);
    if (t.empty()) return fail("it is empty");
    if (t == "max") return cgroup_unlimited;
    if (t.front() == '-') return fail("it is negative");
    std::size_t i = 0;
    std::uint64_t whole = 0;
    std::size_t digits = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
        const std::uint64_t d = static_cast<std::uint64_t>(t[i] - '0');
        if (whole > (cgroup_unlimited - d) / 10) return fail("it is too large");
        whole = whole * 10 + d;
        ++i;
        ++digits;
    }
    // Up to 18 fractional digits, kept as an integer numerator over 10^n.
    std::uint64_t fraction = 0, scale = 1;
    bool has_point = false;
    if (i < t.size() && t[i] == '.') {
        has_point = true;
        ++i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            if (scale >= 1'000'000'000'000'000'000ULL) return fail("too many decimals");
            fraction = fraction * 10 + static_cast<std::uint64_t>(t[i] - '0');
            scale *= 10;
            ++i;
            ++digits;
        }
        if (scale == 1) return fail("no digits after the decimal point");
    }
    if (digits == 0) return fail("it does not start with a number");
    while (i < t.size() && t[i] == ' ') ++i;
    std::string_view unit = t.substr(i);
    int shift = 0;
    if (!unit.empty()) {
        static constexpr std::string_view letters = "kmgtpe";
        char letter = unit.front();
        if (letter >= 'A' && letter <= 'Z') letter = static_cast<char>(letter - 'A' + 'a');
        const auto at = letters.find(letter);
        if (at != std::string_view::npos) {
            shift = 10 * static_cast<int>(at + 1);
            unit.remove_prefix(1);
            if (!unit.empty() && unit.front() == 'i') unit.remove_prefix(1);
        }
        if (!unit.empty() && (unit.front() == 'B' || unit.front() == 'b') && (shift > 0 || unit.size() == 1))
            unit.remove_prefix(1);
        if (!unit.empty()) return fail("unknown unit '" + std::string(t.substr(i)) + "'");
    }
    if (shift == 0 && has_point && fraction != 0) return fail("a byte count must be whole");
    if (shift > 0 && whole > (cgroup_unlimited >> shift)) return fail("it is too large");
    std::uint64_t bytes = whole << shift;
    if (fraction != 0) {
        // floor(fraction / scale * 2^shift) by binary long division, which
        // stays within 64 bits: the remainder is below scale <= 10^18.
        std::uint64_t part = 0, remainder = fraction;
        for (int bit = 0; bit < shift; ++bit) {
            remainder *= 2;
            part *= 2;
            if (remainder >= scale) {
                remainder -= scale;
                part += 1;
            }
        }
        if (part > cgroup_unlimited - bytes) return fail("it is too large");
        bytes += part;
    }
    if (bytes == cgroup_unlimited) return fail("it is too large");
    return bytes;
}

// A CPU or memory-node list as cpuset files use it: "0-3,5,7-8". Throws
// ctr::error(set_cgroup_limit, EINVAL) naming `what`. The empty list is
// valid (it reads back from a cpuset that was never set). The numbers come
// sorted, each once.
template <class = void>
inline std::vector<unsigned> parse_cpu_list(std::string_view text, std::string_view what = "cpu list") {
    const auto fail = [&](std::string_view why) -> std::vector<unsigned> {
        throw error(step::set_cgroup_limit, EINVAL, std::string(what),
                    "bad list '" + std::string(text) + "': " + std::string(why) + "; write e.g. '0-3,6'");
    };
    std::vector<unsigned> out;
    const std::string_view t = cgroup_trim(text);
    if (t.empty()) return out;
    for (std::string_view part : cgroup_split(t, ',')) {
        part = cgroup_trim(part);
        const auto dash = part.find('-');
        const auto first = parse_decimal(part.substr(0, dash));
        const auto last = dash == std::string_view::npos ? first : parse_decimal(part.substr(dash + 1));
        if (!first || !last) return fail("'" + std::string(part) + "' is not a number or a range");
        if (*last < *first) return fail("the range '" + std::string(part) + "' runs backwards");
        if (*last >= 65536) return fail("'" + std::string(part) + "' is beyond any CPU or node number");
        for (std::uint64_t n = *first; n <= *last; ++n) out.push_back(static_cast<unsigned>(n));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// The value of `key` in a "key value" per line file (cpu.stat,
// memory.events, pids.events, memory.oom_control, cpuacct.stat). Nothing
// when the key is absent or its value is not a number.
template <class = void>
inline std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto w = cgroup_words(line);
        if (w.size() >= 2 && w[0] == key) return parse_decimal(w[1]);
    }
    return std::nullopt;
}

// A single value as limit files hold it: a number, or "max" (v2) as
// cgroup_unlimited.
template <class = void>
inline std::optional<std::uint64_t> parse_limit_value(std::string_view text) {
    const auto t = cgroup_trim(text);
    if (t == "max") return cgroup_unlimited;
    return parse_decimal(t);
}

// In an io.max text, the value of `key` (rbps, wbps, riops, wiops) on the
// line for `device` ("8:0"); "max" as cgroup_unlimited. Nothing when the
// device has no line (no limit set).
template <class = void>
inline std::optional<std::uint64_t> io_max_value(std::string_view text, std::string_view device, std::string_view key) {
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto w = cgroup_words(line);
        if (w.empty() || w[0] != device) continue;
        for (std::size_t i = 1; i < w.size(); ++i) {
            const auto eq = w[i].find('=');
            if (eq != std::string_view::npos && w[i].substr(0, eq) == key)
                return parse_limit_value(w[i].substr(eq + 1));
        }
    }
    return std::nullopt;
}

// The name of a group: "<prefix>-<creator pid>-<creator start time>-<counter>-<random>".
// The creator's pid and start time (clock ticks after boot, from
// /proc/<pid>/stat) let reap_stale tell a crashed run's group from a live
// one, even after the pid was reused; the random part keeps names apart
// across pid namespaces.
struct group_name {
    std::string prefix;
    std::uint64_t pid = 0;
    std::uint64_t start_time = 0;
    std::uint64_t counter = 0;
    std::string random;
};

template <class = void>
inline std::string format_group_name(const group_name& n) {
    return n.prefix + "-" + std::to_string(n.pid) + "-" + std::to_string(n.start_time) + "-" + std::to_string(n.counter)
           + "-" + n.random;
}

template <class = void>
inline std::optional<group_name> parse_group_name(std::string_view name) {
    group_name out;
    std::string_view rest = name;
    std::string_view fields[4];
    for (int i = 3; i >= 0; --i) {
        const auto dash = rest.rfind('-');
        if (dash == std::string_view::npos) return std::nullopt;
        fields[i] = rest.substr(dash + 1);
        rest = rest.substr(0, dash);
    }
    if (rest.empty() || fields[3].empty()) return std::nullopt;
    for (char c : fields[3])
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    const auto pid = parse_decimal(fields[0]), start = parse_decimal(fields[1]), counter = parse_decimal(fields[2]);
    if (!pid || !start || !counter) return std::nullopt;
    out.prefix = std::string(rest);
    out.pid = *pid;
    out.start_time = *start;
    out.counter = *counter;
    out.random = std::string(fields[3]);
    return out;
}

// A prefix must make a valid, unambiguous directory name: letters, digits,
// '_', '.', '-', not starting with '.', at most 64 characters.
template <class = void>
inline void check_group_prefix(std::string_view prefix) {
    bool ok = !prefix.empty() && prefix.size() <= 64 && prefix.front() != '.';
    for (char c : prefix)
        ok = ok
             && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
                 || c == '-');
    if (!ok)
        throw error(step::create_cgroup, EINVAL, std::string(prefix),
                    "a group name prefix is 1 to 64 of [A-Za-z0-9_.-], not starting with '.'");
}

// The start time (field 22) and state (field 3) of /proc/<pid>/stat's text.
template <class = void>
inline std::optional<std::pair<std::uint64_t, char>> parse_proc_stat_start(std::string_view stat) {
    const auto paren = stat.rfind(')');
    if (paren == std::string_view::npos) return std::nullopt;
    const auto w = cgroup_words(stat.substr(paren + 1));
    // w[0] is field 3 (state); field 22 is w[19].
    if (w.size() < 20 || w[0].empty()) return std::nullopt;
    const auto start = parse_decimal(w[19]);
    if (!start) return std::nullopt;
    return std::pair{*start, w[0].front()};
}

}  // namespace ctr::detail
