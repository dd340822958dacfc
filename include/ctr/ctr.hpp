#pragma once
// ctr: header-only Linux process isolation. Include this one header.

#include <ctr/capabilities.hpp>
#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/mount.hpp>
#include <ctr/net.hpp>
#include <ctr/ns.hpp>
#include <ctr/ns_scope.hpp>
#include <ctr/port_forward.hpp>
#include <ctr/probe.hpp>
#include <ctr/process.hpp>
#include <ctr/seccomp.hpp>
#include <ctr/security.hpp>
#include <ctr/spawn_options.hpp>
#include <ctr/unique_fd.hpp>
