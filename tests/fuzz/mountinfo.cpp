// Fuzz target: /proc/self/mountinfo text, as the cgroup layout
// (detail::parse_cgroup_mounts, parse_cgroup_layout) and the mount planner
// (mount::detail::submounts_in) read it.
//
// Properties: no exception at all (these parsers skip what they do not
// understand); every mount found comes from a line that says cgroup or
// cgroup2; the two mountinfo unescapers agree on what the kernel writes
// (\ooo with a first digit 0-3); submounts are relative, non-empty and
// listed once; a parsed layout is consistent (layout_check.hpp).
#include "layout_check.hpp"

#include <ctr/mount.hpp>

#include <algorithm>
#include <set>

namespace d = ctr::detail;

namespace {

// The /proc/self/cgroup texts the layout is tried with: pure v2 and this
// project's hybrid CI host.
constexpr std::string_view own_cgroups[] = {
    "0::/user.slice/user-1000.slice/session-2.scope\n",
    "0::/delegated/ctr-leaf\n",
    "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n",
};

// Whether the text has an escape only the kernel's own writer never makes
// (\4xx to \7xx): there the two unescapers may differ.
bool has_wide_escape(std::string_view text) {
    for (std::size_t i = 0; i + 3 < text.size(); ++i)
        if (text[i] == '\\' && text[i + 1] >= '4' && text[i + 1] <= '7' && text[i + 2] >= '0' && text[i + 2] <= '7' &&
            text[i + 3] >= '0' && text[i + 3] <= '7')
            return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    const auto mounts = d::parse_cgroup_mounts(text);
    std::size_t cgroup_lines = 0;
    // A bound, not the parser again: every mount it finds comes from a line
    // that names cgroup somewhere (the parser splits fields on any run of
    // blanks, so " -  cgroup" counts as well as the kernel's " - cgroup").
    for (std::string_view line : ctr_fuzz::split(text, '\n'))
        if (line.find("cgroup") != std::string_view::npos) ++cgroup_lines;
    CTR_FUZZ_CHECK(mounts.size() <= cgroup_lines, "%zu mounts from %zu cgroup lines", mounts.size(), cgroup_lines);
    for (const auto& m : mounts) {
        CTR_FUZZ_CHECK(!m.v2 || m.controllers.empty(), "a v2 mount with v1 controllers");
        for (const auto& c : m.controllers)
            CTR_FUZZ_CHECK(!c.empty() && c.find(',') == std::string::npos, "controller '%s'", c.c_str());
    }

    if (!has_wide_escape(text))
        CTR_FUZZ_CHECK(d::unescape_mountinfo(text) == ctr::mount::detail::unescape_mountinfo(text),
                       "the unescapers disagree");

    for (const std::string source : {"/", "/sys", "/proc"}) {
        const auto below = ctr::mount::detail::submounts_in(text, source);
        std::set<std::string> seen;
        for (const auto& relative : below) {
            CTR_FUZZ_CHECK(!relative.empty(), "an empty submount below %s", source.c_str());
            CTR_FUZZ_CHECK(seen.insert(relative).second, "'%s' listed twice", relative.c_str());
        }
    }

    for (std::string_view own : own_cgroups) ctr_fuzz::check_layout(text, own);
    return 0;
}
