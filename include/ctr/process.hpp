#pragma once
// process::spawn with every launch layer: <ctr/spawn.hpp> plus the root
// filesystem (options::root), a veth network (options::network) and pasta
// (options::pasta).
//
// A program that only spawns can include <ctr/spawn.hpp> and parse none of
// these. Here too a layer's code is compiled only where its option is set
// (detail::layer_option): spawn calls it through the pointer that setting
// the option took.

#include <ctr/detail/launch_filesystem.hpp>
#include <ctr/detail/launch_network.hpp>
#include <ctr/detail/launch_pasta.hpp>
#include <ctr/spawn.hpp>
