#pragma once
// ctr: header-only Linux process isolation. Include this one header.

#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/mount.hpp>
#include <ctr/ns.hpp>
#include <ctr/ns_scope.hpp>
#include <ctr/probe.hpp>
#include <ctr/process.hpp>
#include <ctr/unique_fd.hpp>
