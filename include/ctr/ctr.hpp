#pragma once
// ctr: header-only Linux process isolation. Include this one header.
//
// Why so many `template <class = void>`: ctr's functions and member functions
// are templates with an unused parameter, so that a translation unit compiles
// (instantiates) a body, and the standard templates it uses, only where the
// program calls it. Calls look the same (`spawn(argv, opts)`); only taking a
// function's address needs `<>`. New functions follow the same rule (trivial
// ones too, so that there is one rule and nobody has to judge "trivial");
// README, "Compile cost", has the budget and the tool that checks it.

#include <ctr/capabilities.hpp>
#include <ctr/cgroup.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/landlock.hpp>
#include <ctr/mount.hpp>
#include <ctr/net.hpp>
#include <ctr/ns.hpp>
#include <ctr/ns_scope.hpp>
#include <ctr/outbound.hpp>
#include <ctr/port_forward.hpp>
#include <ctr/port_mapping.hpp>
#include <ctr/port_nat.hpp>
#include <ctr/prepared.hpp>
#include <ctr/probe.hpp>
#include <ctr/process.hpp>
#include <ctr/pasta.hpp>
#include <ctr/seccomp.hpp>
#include <ctr/seccomp_notify.hpp>
#include <ctr/security.hpp>
#include <ctr/spawn.hpp>
#include <ctr/spawn_options.hpp>
#include <ctr/unique_fd.hpp>
