// Must not compile with -Werror: each line drops a value that owns a kernel
// resource (a child, a mount, a bind-mounted namespace, an fd), which its
// destructor would end at once. [[nodiscard]] on spawn and on the owning
// types (child, guard, persisted, unique_fd, group, scope, ...) says so.
#include <ctr/ctr.hpp>

void dropped(ctr::process::child& running) {
    ctr::process::spawn({"/bin/true"});                 // the child is killed at once
    ctr::mount::tmpfs("/mnt");                          // unmounted at once
    ctr::ns::persist(1, ctr::ns::kind::network, "/x");  // unmounted at once
    running.release();                                  // the pidfd is closed, the child never reaped
}

int main() { return 0; }
