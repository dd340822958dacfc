#pragma once
// The properties of a parsed cgroup layout, shared by the mountinfo and
// proc_cgroup targets.
#include "fuzz.hpp"

#include <ctr/detail/cgroup_layout.hpp>

namespace ctr_fuzz {

inline void check_layout(std::string_view mountinfo, std::string_view proc_cgroup) {
    namespace d = ctr::detail;
    const d::cgroup_layout_info info = d::parse_cgroup_layout(mountinfo, proc_cgroup);
    (void)info.describe();
    const bool has_v2 = info.v2() != nullptr;
    CTR_FUZZ_CHECK(!has_v2 || info.hierarchies.front().v2, "the v2 hierarchy is not first");
    std::size_t v2_count = 0;
    for (const auto& h : info.hierarchies) {
        v2_count += h.v2 ? 1 : 0;
        if (!h.usable()) continue;
        // A usable hierarchy has a directory below its mount point, and
        // places groups in its own cgroup or (from a ctr-leaf) the parent.
        CTR_FUZZ_CHECK(!h.place_dir.empty(), "usable hierarchy without a directory");
        // v2 reports the mount that holds the directory. A v1 hierarchy
        // mounted twice reports its first mount, which may not be the one
        // that holds it: only messages use it, so that is not checked.
        if (h.v2)
            CTR_FUZZ_CHECK(h.place_dir.rfind(h.mount_point, 0) == 0, "'%s' is not below '%s'", h.place_dir.c_str(),
                           h.mount_point.c_str());
        CTR_FUZZ_CHECK(h.place_path == h.own_path || h.place_path == d::parent_cgroup_path(h.own_path),
                       "place '%s' for own '%s'", h.place_path.c_str(), h.own_path.c_str());
        CTR_FUZZ_CHECK(h.place_path.find("/../") == std::string::npos && h.place_path.rfind("/..", 0) != 0,
                       "usable place '%s' climbs out", h.place_path.c_str());
    }
    CTR_FUZZ_CHECK(v2_count <= 1, "%zu v2 hierarchies", v2_count);
    CTR_FUZZ_CHECK((info.kind == ctr::cgroup_layout::none) == info.hierarchies.empty(), "layout %s with %zu hierarchies",
                   std::string(ctr::to_string(info.kind)).c_str(), info.hierarchies.size());
    CTR_FUZZ_CHECK(info.kind != ctr::cgroup_layout::v2 || (info.hierarchies.size() == 1 && has_v2),
                   "a v2 layout with v1 hierarchies");
}

}  // namespace ctr_fuzz
