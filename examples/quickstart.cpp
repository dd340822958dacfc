// The README's example: start a program, capture what it prints, and get
// back exactly how it ended.
// expect-output: exit code 0
#include <ctr/ctr.hpp>

#include <chrono>
#include <iostream>

int main() {
    using namespace std::chrono_literals;
    auto child = ctr::process::spawn({"/bin/sh", "-c", "echo hello from pid $$"},
                                     {.std_out = ctr::process::stdio::capture(), .timeout = 10s});
    ctr::process::result r = child.wait();
    std::cout << "child said: " << r.std_out << "exit code " << r.exit_code.value_or(-1) << ", wall "
              << std::chrono::duration_cast<std::chrono::microseconds>(r.wall_time).count() << " us, CPU "
              << std::chrono::duration_cast<std::chrono::microseconds>(r.user_time + r.system_time).count()
              << " us\n";
    return r.success() ? 0 : 1;
}
