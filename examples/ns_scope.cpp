// A server and its client in a fresh network namespace, on a worker thread
// that enters it with ns::scope, while the main thread stays in the host's.
// Nothing the two exchange can reach the host's network: the namespace has
// only its own loopback.
// expect-output: worker: in a fresh network namespace with only lo
// expect-output: server got: ping
// expect-output: client got: pong
// expect-output: main: still in the host's network namespace
#include <ctr/ctr.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

std::string network_namespace_of_this_thread() {
    return std::filesystem::read_symlink("/proc/thread-self/ns/net").string();
}

// The interfaces this thread sees, from /proc/thread-self/net/dev.
std::string interfaces() {
    std::ifstream dev("/proc/thread-self/net/dev");
    std::string line, names;
    for (int n = 0; std::getline(dev, line); ++n)
        if (n >= 2) names += (names.empty() ? "" : " ") + line.substr(line.find_first_not_of(' '), line.find(':') - line.find_first_not_of(' '));
    return names;
}

ctr::unique_fd checked(int fd, const char* what) {
    if (fd < 0) throw std::system_error(errno, std::generic_category(), what);
    return ctr::unique_fd(fd);
}

// A TCP echo of one message over 127.0.0.1, server and client on this thread.
void ping_pong() {
    const auto server = checked(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(server.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(server.get(), 1) != 0 ||
        getsockname(server.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "bind/listen");

    const auto client = checked(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    if (connect(client.get(), reinterpret_cast<sockaddr*>(&address), length) != 0)
        throw std::system_error(errno, std::generic_category(), "connect");
    const auto accepted = checked(accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC), "accept");

    char buffer[16] = {};
    if (write(client.get(), "ping", 4) != 4 || read(accepted.get(), buffer, sizeof buffer - 1) != 4)
        throw std::runtime_error("ping lost");
    std::cout << "server got: " << buffer << '\n';
    if (write(accepted.get(), "pong", 4) != 4 || read(client.get(), buffer, sizeof buffer - 1) != 4)
        throw std::runtime_error("pong lost");
    std::cout << "client got: " << buffer << '\n';
}

}  // namespace

int main() {
    const std::string host_namespace = network_namespace_of_this_thread();
    int status = 0;
    std::thread worker([&] {
        try {
            ctr::ns::scope fresh(ctr::ns::network);  // lo is up; the thread returns when this ends
            if (interfaces() == "lo" && network_namespace_of_this_thread() != host_namespace)
                std::cout << "worker: in a fresh network namespace with only lo\n";
            ping_pong();
        } catch (const ctr::error& e) {
            // Creating a network namespace needs CAP_SYS_ADMIN; a rootless
            // caller uses process::spawn with ns::network instead.
            std::cerr << "ns_scope: " << e.what() << '\n';
            status = e.code().value() == EPERM ? 77 : 1;
        } catch (const std::exception& e) {
            std::cerr << "ns_scope: " << e.what() << '\n';
            status = 1;
        }
    });
    worker.join();
    if (status != 0) return status;
    if (network_namespace_of_this_thread() == host_namespace)
        std::cout << "main: still in the host's network namespace (" << host_namespace << ")\n";
    return 0;
}
