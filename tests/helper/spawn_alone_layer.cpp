// The other translation unit of tests/spawn_alone_test.cpp: it includes every
// launch layer and sets options::root, so that the test's own unit, which
// includes only <ctr/spawn.hpp>, can show that a spawn compiled without the
// layers still runs the layer an option was given with.
#include <ctr/process.hpp>

namespace ctr_test {

// With a pid namespace: the plan's fresh /proc needs one where the caller is
// not root (as every rootless sandbox with a /proc).
ctr::process::options options_with_a_readonly_host_root() {
    return {.namespaces = ctr::ns::pid, .root = ctr::mount::host_readonly()};
}

}  // namespace ctr_test
