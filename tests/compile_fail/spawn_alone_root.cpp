// Must not compile: <ctr/spawn.hpp> is spawn without the root filesystem,
// network and pasta layers, so setting options::root with it alone would
// give a spawn that cannot honour the option. The static_assert in
// detail::layer_option says which header to include.
#include <ctr/spawn.hpp>

int main() {
    ctr::process::options opts;
    opts.root = ctr::mount::plan{.rootfs = "/"};
    return ctr::process::spawn({"/bin/true"}, opts).wait().success() ? 0 : 1;
}
