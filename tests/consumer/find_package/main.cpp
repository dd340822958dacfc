#include <ctr/ctr.hpp>

int main() {
    return ctr::process::spawn(std::vector<std::string>{"/bin/true"}).wait().exit_code.value_or(1);
}
