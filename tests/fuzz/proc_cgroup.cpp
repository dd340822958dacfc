// Fuzz target: /proc/self/cgroup text ("id:controllers:path" lines), as
// detail::parse_proc_cgroup and parse_cgroup_layout read it.
//
// Properties: no exception at all; an entry's id is the decimal number
// before the first colon and its path the text after the second; a parsed
// layout is consistent (layout_check.hpp) on a pure v2 host, on a v1 host
// and on this project's hybrid CI host.
#include "layout_check.hpp"

namespace d = ctr::detail;

namespace {

constexpr std::string_view mountinfos[] = {
    "25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n",
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n",
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    const auto entries = d::parse_proc_cgroup(text);
    std::size_t lines = 0;
    for (std::string_view line : ctr_fuzz::split(text, '\n')) lines += line.empty() ? 0 : 1;
    CTR_FUZZ_CHECK(entries.size() <= lines, "%zu entries from %zu lines", entries.size(), lines);
    for (const auto& e : entries) {
        CTR_FUZZ_CHECK(e.id >= 0, "id %d", e.id);
        CTR_FUZZ_CHECK(e.path.find('\n') == std::string::npos, "a path with a newline");
        // The same line, written back, parses to the same entry.
        std::string line = std::to_string(e.id) + ":";
        for (std::size_t i = 0; i < e.controllers.size(); ++i) line += (i ? "," : "") + e.controllers[i];
        if (!e.name.empty()) line += (e.controllers.empty() ? "name=" : ",name=") + e.name;
        line += ":" + e.path;
        const auto again = d::parse_proc_cgroup(line);
        CTR_FUZZ_CHECK(again.size() == 1 && again[0].id == e.id && again[0].path == e.path &&
                           again[0].controllers == e.controllers && again[0].name == e.name,
                       "'%s' does not read back", line.c_str());
    }

    for (std::string_view mountinfo : mountinfos) ctr_fuzz::check_layout(mountinfo, text);
    return 0;
}
