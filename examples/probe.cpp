// Prints what this host lets ctr do: one feature a line, with the reason
// where a feature is missing.
// expect-output: pidfd: yes
#include <ctr/ctr.hpp>

#include <iostream>

int main() {
    std::cout << ctr::probe();
    return 0;
}
