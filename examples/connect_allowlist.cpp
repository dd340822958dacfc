// A sandbox whose connect() reaches only the addresses the parent allows,
// decided in the parent by a seccomp supervisor (<ctr/seccomp_notify.hpp>).
//
// The sandboxed program (this file again, with --client) runs in network
// and user namespaces of its own, listens on 127.0.0.1 ports 7001 and 7002
// there, and connects to each. Its filter sends every connect() to the
// supervisor, which reads the address, and for an allowed one connects the
// program's own socket (taken with pidfd_getfd) to the address it read,
// answering with that result; any other gets EACCES. The decision and the
// connect use the same copy of the address: a program that changes its
// memory after the read cannot slip another address through, which it could
// if the supervisor answered "continue".
//
// expect-output: connect 127.0.0.1:7001: connected
// expect-output: connect 127.0.0.1:7002: refused by the supervisor \(Permission denied\)
// expect-output: supervisor: allowed 1, refused 1
#include <ctr/ctr.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <utility>

namespace {

// The sandboxed side: two listeners, then a connect to each.
int client() {
    for (const int port : {7001, 7002}) {
        const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(static_cast<std::uint16_t>(port));
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(listener, 4) != 0) {
            std::cout << "listen on " << port << ": " << std::strerror(errno) << "\n";
            return 1;
        }
    }
    for (const int port : {7001, 7002}) {
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(static_cast<std::uint16_t>(port));
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        std::cout << "connect 127.0.0.1:" << port << ": ";
        if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0)
            std::cout << "connected\n";
        else
            std::cout << "refused by the supervisor (" << std::strerror(errno) << ")\n";
        close(s);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--client") return client();

    namespace sc = ctr::seccomp;
    using namespace std::chrono_literals;
    const std::set<std::pair<std::uint32_t, std::uint16_t>> allowed = {{INADDR_LOOPBACK, 7001}};

    auto filter = sc::builder{}.default_action(sc::action::allow()).rule("connect", sc::action::notify()).build_shared();
    ctr::process::options opts;
    opts.namespaces = ctr::ns::user | ctr::ns::network;
    opts.security.no_new_privileges = true;
    opts.security.seccomp = filter;
    opts.std_out = ctr::process::stdio::capture();
    opts.timeout = 30s;
    ctr::process::child sandbox;
    try {
        sandbox = ctr::process::spawn({"/proc/self/exe", "--client"}, opts);
    } catch (const ctr::error& e) {
        std::cerr << "ctr-example: skipped: " << e.what() << "\n";
        return 77;
    }

    int allowed_count = 0, refused_count = 0;
    ctr::process::result r;
    {
        sc::supervisor guard(sandbox.take_seccomp_listener(), [&](const sc::notification& call, sc::listener& from) {
            if (call.syscall != SYS_connect) return sc::response::continue_call();  // not reached: only connect notifies
            // Read the address once; decide and connect on this copy.
            const std::string address = from.read_memory(call, call.args[1], call.args[2]);
            sockaddr_in to{};
            if (address.size() < sizeof to) return ++refused_count, sc::response::fail_with(EACCES);
            std::memcpy(&to, address.data(), sizeof to);
            if (to.sin_family != AF_INET || !allowed.contains({ntohl(to.sin_addr.s_addr), ntohs(to.sin_port)}))
                return ++refused_count, sc::response::fail_with(EACCES);
            const ctr::unique_fd socket = from.take_fd(call, static_cast<int>(call.args[0]));
            ++allowed_count;
            if (connect(socket.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0)
                return sc::response::fail_with(errno);
            return sc::response::value(0);
        });
        r = sandbox.wait();
    }
    std::cout << r.std_out << "supervisor: allowed " << allowed_count << ", refused " << refused_count << "\n";
    return r.success() ? 0 : 1;
}
