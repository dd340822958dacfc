// The other translation unit of tests/spawn_alone_test.cpp: it includes every
// launch layer and sets options::root, so that the test's own unit, which
// includes only <ctr/spawn.hpp>, can show that a spawn compiled without the
// layers still runs the layer an option was given with.
#include <ctr/process.hpp>

namespace ctr_test {

ctr::process::options options_with_a_readonly_host_root() {
    return {.root = ctr::mount::host_readonly()};
}

}  // namespace ctr_test
