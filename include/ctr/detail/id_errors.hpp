#pragma once
// The error for a uid or gid the sandbox's user namespace does not map.
// The kernel answers only EINVAL to setresuid/setresgid of such an id; the
// caller needs to know that the id is not mapped, which ids are, and how to
// get more (a subordinate range and the setuid helpers).

#include <ctr/error.hpp>
#include <ctr/ns.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ctr::process::detail {

// Which ids a map gives the sandbox, as "0 to 65536" or "0" (one id).
template <class = void>
inline std::string mapped_ids_text(std::vector<ns::id_range> ranges) {
    std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.inside < b.inside; });
    std::string text;
    for (std::size_t i = 0; i < ranges.size();) {
        // Ranges that follow each other inside read as one.
        const std::uint64_t first = ranges[i].inside;
        std::uint64_t end = first + ranges[i].count;
        for (++i; i < ranges.size() && ranges[i].inside == end; ++i) end += ranges[i].count;
        if (!text.empty()) text += ", ";
        text += std::to_string(first);
        if (end - first > 1) text += " to " + std::to_string(end - 1);
    }
    return text;
}

// `kind` is "uid" or "gid"; `maps` what the launch asked for (resolved
// again here, after the failure, as plan_namespaces resolved it).
template <class = void>
inline error unmapped_id_error(step s, int code, const char* kind, std::uint32_t id, const ns::id_maps& asked) {
    const std::string shown = std::to_string(id);
    if (code != EINVAL) return error(s, code, std::string(kind) + " " + shown);
    const bool uid = kind[0] == 'u';
    std::vector<ns::id_range> mapped;
    try {
        const auto maps = ns::detail::resolve_id_maps(asked);
        mapped = uid ? maps.uid : maps.gid;
    } catch (const error&) {
    }
    std::string why = std::string(kind) + " " + shown + " is not mapped in the sandbox's user namespace";
    if (!mapped.empty()) why += " (it has " + std::string(kind) + (mapped.size() == 1 && mapped[0].count == 1 ? " " : "s ") + mapped_ids_text(mapped) + ")";
    const auto euid = static_cast<std::uint32_t>(ctr::detail::raw::call(SYS_geteuid));
    std::uint32_t total = 0;
    for (const auto& r : mapped) total += r.count;
    const char* file = uid ? "/etc/subuid" : "/etc/subgid";
    const char* helper = uid ? "/usr/bin/newuidmap" : "/usr/bin/newgidmap";
    if (euid != 0 && total <= 1 && asked.uid.empty() && asked.gid.empty()) {
        // Only the caller's own id went in: say what would add the rest.
        const std::string user = ns::detail::user_name_of(euid);
        const std::string name = user.empty() ? std::to_string(euid) : user;
        const bool has_range = ns::detail::subordinate_range(file, name, euid).has_value();
        const bool has_helper = ns::detail::executable(helper);
        if (has_range && has_helper && !asked.full_range_when_available)
            return error(s, code, shown,
                         why + ": ns::id_maps::full_range_when_available is off, so only the caller's own id is mapped "
                               "although " + file + " has a range for " + name + "; turn it on");
        why += ": a caller that is not root maps only its own id (as 0) unless " + std::string(file) +
               " gives it a range and " + helper + " (package uidmap) is installed; then ctr maps ids 1 to 65536 " +
               "inside onto that range. Here " +
               (has_range ? std::string(file) + " has a range for " + name : "there is no range for " + name + " in " + file) +
               " and " + (has_helper ? std::string(helper) + " is installed" : std::string(helper) + " is missing") +
               ". Fix: as root, `usermod --add-sub" + (uid ? "uids" : "gids") + " 100000-165535 " + name +
               "` and install uidmap, or run as " + kind + " 0";
    } else {
        why += ": use an id the map has, or map this one (ns::id_maps)";
    }
    return error(s, code, shown, why);
}

}  // namespace ctr::process::detail
