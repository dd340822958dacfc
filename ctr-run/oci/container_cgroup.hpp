#pragma once
// The container's cgroup across the runtime's invocations: create makes it
// at the config's cgroupsPath and leaves it; kill, delete and exec find it
// again by that path.
#include "oci/config.hpp"

#include <ctr/cgroup.hpp>

#include <optional>
#include <string>

namespace ctr_run::oci {

// Nothing when the caller may not make groups and none is needed (no
// limits asked for).
std::optional<ctr::cgroup::group> make_container_group(const cgroup_request& request);
// Leaves the group's directories for later invocations.
void forget_container_group(ctr::cgroup::group& group);
// The group made at `path`, or nothing when it is gone.
std::optional<ctr::cgroup::group> open_container_group(const std::string& path);
void signal_container_group(ctr::cgroup::group& group, int sig);
// Kills what is left in it and removes it.
void remove_container_group(ctr::cgroup::group& group);

}  // namespace ctr_run::oci
