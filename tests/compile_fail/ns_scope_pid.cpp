// Must not compile: a thread cannot enter a pid namespace (it applies only
// to children). The static_assert in ns::fresh_scope says so.
#include <ctr/ns_scope.hpp>

int main() {
    ctr::ns::fresh_scope<ctr::ns::kind::network, ctr::ns::kind::pid> scope;
    return 0;
}
