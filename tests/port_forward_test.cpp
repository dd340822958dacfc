// net::port_forwarder against the real kernel: TCP and UDP relayed through
// it to servers on threads of this process, byte for byte, and every failure
// it reports. Only 127.0.0.1 is used, so no packet leaves this machine.
//
// The test's own sockets use libc directly, not ctr::detail::sys, so that a
// fault armed for the forwarder never hits the test's side.
#include "support.hpp"

#include <ctr/port_forward.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace net = ctr::net;
using ctr::detail::sys::call;
using ctr::detail::sys::fault_injection;
using net::port_forwarder;
using net::port_mapping;
using net::protocol;

namespace {

const net::ipv4_address loopback = net::ipv4_address::parse("127.0.0.1");

// Hang guards only: no test asserts how long anything takes.
constexpr timeval socket_timeout{30, 0};
constexpr auto wait_limit = 30s;

template <class Predicate>
bool eventually(Predicate done) {
    const auto give_up = std::chrono::steady_clock::now() + wait_limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

sockaddr_in loopback_address(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

std::uint16_t bound_port(int fd) {
    sockaddr_in a{};
    socklen_t length = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0) throw std::runtime_error("getsockname");
    return ntohs(a.sin_port);
}

// A socket of `type` bound to 127.0.0.1:`port` (0: any), with the hang guards set.
ctr::unique_fd bound_socket(int type, std::uint16_t port = 0) {
    ctr::unique_fd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("socket");
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &socket_timeout, sizeof socket_timeout);
    const sockaddr_in a = loopback_address(port);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
    return fd;
}

ctr::unique_fd tcp_connect(std::uint16_t port) {
    ctr::unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("socket");
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &socket_timeout, sizeof socket_timeout);
    const sockaddr_in a = loopback_address(port);
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
    return fd;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Everything `fd` delivers until its end, and how it ended: 0 for a clean
// end of stream, else the errno (ECONNRESET for a reset, EAGAIN when the
// hang guard ran out).
struct received {
    std::string data;
    int ending = 0;
};
received receive_all(int fd) {
    received out;
    char chunk[65536];
    for (;;) {
        const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            out.data.append(chunk, static_cast<std::size_t>(n));
        } else if (n == 0) {
            return out;
        } else if (errno != EINTR) {
            out.ending = errno;
            return out;
        }
    }
}

std::string random_bytes(std::size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::string out(size, '\0');
    for (auto& c : out) c = static_cast<char>(generator());
    return out;
}

// A TCP server on 127.0.0.1 that runs `handler` on each connection, on a
// thread of its own, and closes the connection after it.
class tcp_server {
public:
    explicit tcp_server(std::function<void(int)> handler)
        : handler_(std::move(handler)), listener_(bound_socket(SOCK_STREAM)) {
        if (listen(listener_.get(), 128) != 0) throw std::runtime_error("listen");
        port_ = bound_port(listener_.get());
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~tcp_server() {
        stop_ = true;
        acceptor_.join();
        for (auto& t : workers_) t.join();
    }
    tcp_server(const tcp_server&) = delete;
    tcp_server& operator=(const tcp_server&) = delete;

    std::uint16_t port() const { return port_; }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &socket_timeout, sizeof socket_timeout);
            std::lock_guard lock(mutex_);
            workers_.emplace_back([this, fd] {
                ctr::unique_fd connection(fd);
                handler_(connection.get());
            });
        }
    }

    std::function<void(int)> handler_;
    ctr::unique_fd listener_;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::thread> workers_;
    std::thread acceptor_;
};

// Sends back what it reads; passes the client's end of stream on as its own.
void echo(int fd) {
    char chunk[65536];
    for (;;) {
        const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!send_all(fd, {chunk, static_cast<std::size_t>(n)})) return;
    }
    shutdown(fd, SHUT_WR);
}

// A UDP server on 127.0.0.1 that answers each datagram with "reply:" and
// the datagram, and notes the source ports it sees.
class udp_echo_server {
public:
    udp_echo_server() : fd_(bound_socket(SOCK_DGRAM)), port_(bound_port(fd_.get())) {
        thread_ = std::thread([this] { serve(); });
    }
    ~udp_echo_server() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return port_; }
    std::set<std::uint16_t> sources() {
        std::lock_guard lock(mutex_);
        return sources_;
    }

private:
    void serve() {
        char datagram[65536];
        while (!stop_) {
            pollfd p{fd_.get(), POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            sockaddr_in from{};
            socklen_t length = sizeof from;
            const ssize_t n =
                recvfrom(fd_.get(), datagram, sizeof datagram, 0, reinterpret_cast<sockaddr*>(&from), &length);
            if (n < 0) continue;
            {
                std::lock_guard lock(mutex_);
                sources_.insert(ntohs(from.sin_port));
            }
            const std::string reply = "reply:" + std::string(datagram, static_cast<std::size_t>(n));
            sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&from), length);
        }
    }

    ctr::unique_fd fd_;
    std::uint16_t port_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::set<std::uint16_t> sources_;
    std::thread thread_;
};

port_mapping tcp_to(std::uint16_t container_port) { return {protocol::tcp, loopback, 0, container_port}; }
port_mapping udp_to(std::uint16_t container_port) { return {protocol::udp, loopback, 0, container_port}; }

// One datagram from `fd` to 127.0.0.1:`port`, and the answer with where it came from.
struct answer {
    std::string data;
    sockaddr_in from{};
};
answer ask(int fd, std::uint16_t port, const std::string& question) {
    const sockaddr_in to = loopback_address(port);
    if (sendto(fd, question.data(), question.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0)
        throw std::runtime_error("sendto");
    answer out;
    char datagram[65536];
    socklen_t length = sizeof out.from;
    const ssize_t n = recvfrom(fd, datagram, sizeof datagram, 0, reinterpret_cast<sockaddr*>(&out.from), &length);
    if (n < 0) throw std::runtime_error("recvfrom: " + std::string(std::strerror(errno)));
    out.data.assign(datagram, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

TEST(port_forward, parse_accepts_docker_syntax) {
    const auto m = port_mapping::parse("8080:80");
    EXPECT_EQ(m.proto, protocol::tcp);
    EXPECT_EQ(m.host_address, net::ipv4_address{});
    EXPECT_EQ(m.host_port, 8080);
    EXPECT_EQ(m.container_port, 80);
    EXPECT_EQ(m.to_string(), "0.0.0.0:8080->80/tcp");

    EXPECT_EQ(port_mapping::parse("127.0.0.1:5353:53/udp"), (port_mapping{protocol::udp, loopback, 5353, 53}));
    EXPECT_EQ(port_mapping::parse("127.0.0.1:5353:53/udp").to_string(), "127.0.0.1:5353->53/udp");
    EXPECT_EQ(port_mapping::parse("8443:443/tcp"), (port_mapping{protocol::tcp, {}, 8443, 443}));
    // The kernel picks the host port: after an address, or with the container port alone.
    EXPECT_EQ(port_mapping::parse("127.0.0.1::80"), (port_mapping{protocol::tcp, loopback, 0, 80}));
    EXPECT_EQ(port_mapping::parse("80"), (port_mapping{protocol::tcp, {}, 0, 80}));
    EXPECT_EQ(port_mapping::parse("53/udp"), (port_mapping{protocol::udp, {}, 0, 53}));
    EXPECT_EQ(port_mapping::parse("65535:1"), (port_mapping{protocol::tcp, {}, 65535, 1}));
}

TEST(port_forward, parse_rejects_with_the_reason) {
    const std::pair<const char*, const char*> cases[] = {
        {"", "empty"},
        {"8080:80/sctp", "must be tcp or udp"},
        {"8080:80/", "must be tcp or udp"},
        {"8080-8081:80", "a port range is several mappings (port_mapping::parse_range)"},
        {"::1:8080:80", "IPv6 address goes in brackets"},
        {"[::1:8080:80", "has no ']'"},
        {"[::1]:80", "needs a host port and a container port"},
        {"[::1]8080:80", "needs a host port and a container port"},
        {"[1.2.3.4]:8080:80", "'1.2.3.4' is not an IPv6 address"},
        {"[::g]:8080:80", "'::g' is not an IPv6 address"},
        {"127.0.0.1:[::1]:80", "goes first, in brackets"},
        {"8080:0", "the container port must be a number from 1 to 65535"},
        {"8080:", "the container port must be a number from 1 to 65535"},
        {"8080:+80", "the container port must be a number from 1 to 65535"},
        {"8080:http", "the container port must be a number from 1 to 65535"},
        {"70000:80", "the host port must be a number from 0 to 65535"},
        {"080080:80", "the host port must be a number from 0 to 65535"},
        {" 8080:80", "the host port must be a number from 0 to 65535"},
        {":80", "the host port is empty"},
        {"1.2.3:8080:80", "'1.2.3' is not an IPv4 address"},
        {"localhost:8080:80", "'localhost' is not an IPv4 address"},
    };
    for (const auto& [text, reason] : cases) {
        try {
            const auto m = port_mapping::parse(text);
            ADD_FAILURE() << "'" << text << "' parsed as " << m.to_string();
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::prepare) << e.what();
            EXPECT_EQ(e.code().value(), EINVAL) << e.what();
            EXPECT_EQ(e.path(), text);
            EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
        }
    }
}

TEST(port_forward, parse_reads_ipv6_addresses_in_brackets) {
    const auto v6 = port_mapping::parse("[2001:db8::1]:8080:80");
    ASSERT_TRUE(v6.host_address.is_ipv6());
    EXPECT_EQ(v6.host_address.ipv6(), ctr::net::ipv6_address::parse("2001:db8::1"));
    EXPECT_EQ(v6.host_port, 8080);
    EXPECT_EQ(v6.container_port, 80);
    EXPECT_EQ(v6.to_string(), "[2001:db8::1]:8080->80/tcp");
    EXPECT_EQ(port_mapping::parse("[::]:8080:80/udp").to_string(), "[::]:8080->80/udp");
    EXPECT_EQ(port_mapping::parse("[::1]::80").host_port, 0);
    EXPECT_TRUE(port_mapping::parse("[::1]::80").host_address.ipv6().is_loopback());
    // Docker: without an address both families, with 0.0.0.0 IPv4 alone.
    EXPECT_TRUE(port_mapping::parse("8080:80").also_ipv6);
    EXPECT_FALSE(port_mapping::parse("0.0.0.0:8080:80").also_ipv6);
    using list = std::vector<port_mapping>;
    const list range = port_mapping::parse_range("[::1]:8000-8001:80-81");
    ASSERT_EQ(range.size(), 2u);
    EXPECT_EQ(range[1].to_string(), "[::1]:8001->81/tcp");
}

TEST(port_forward, an_ipv6_host_side_relays_tcp_and_udp_to_an_ipv4_target) {
    const int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) GTEST_SKIP() << "this kernel has no IPv6";
    close(probe);
    tcp_server tcp(echo);
    udp_echo_server udp;
    port_forwarder forwarder({port_mapping::parse("[::1]::" + std::to_string(tcp.port())),
                              port_mapping::parse("[::1]::" + std::to_string(udp.port()) + "/udp")});
    forwarder.start(loopback);
    sockaddr_in6 at{};
    at.sin6_family = AF_INET6;
    at.sin6_addr = in6addr_loopback;

    at.sin6_port = htons(forwarder.host_port(0));
    ctr::unique_fd client(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
    ASSERT_EQ(connect(client.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at), 0) << std::strerror(errno);
    ASSERT_TRUE(send_all(client.get(), "over IPv6"));
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(receive_all(client.get()).data, "over IPv6");
    // IPv6 alone: nothing listens on 127.0.0.1 at that port.
    EXPECT_THROW((void)tcp_connect(forwarder.host_port(0)), std::runtime_error);

    at.sin6_port = htons(forwarder.host_port(1));
    ctr::unique_fd datagrams(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    setsockopt(datagrams.get(), SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
    ASSERT_GT(sendto(datagrams.get(), "six", 3, 0, reinterpret_cast<const sockaddr*>(&at), sizeof at), 0);
    char reply[64];
    sockaddr_in6 from{};
    socklen_t length = sizeof from;
    const ssize_t n = recvfrom(datagrams.get(), reply, sizeof reply, 0, reinterpret_cast<sockaddr*>(&from), &length);
    ASSERT_GT(n, 0) << std::strerror(errno);
    EXPECT_EQ(std::string(reply, static_cast<std::size_t>(n)), "reply:six");
    // From the host port it was sent to.
    EXPECT_EQ(from.sin6_family, AF_INET6);
    EXPECT_EQ(ntohs(from.sin6_port), forwarder.host_port(1));
}

TEST(port_forward, a_mapping_without_an_address_relays_ipv6_clients_too_and_an_explicit_0_0_0_0_does_not) {
    const int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) GTEST_SKIP() << "this kernel has no IPv6";
    close(probe);
    tcp_server tcp(echo);
    // Docker's "-p PORT": both families; "-p 0.0.0.0::PORT": IPv4 alone
    // (the negative control: the same IPv6 client is refused).
    port_forwarder both({port_mapping::parse(std::to_string(tcp.port()))});
    port_forwarder v4_only({port_mapping::parse("0.0.0.0::" + std::to_string(tcp.port()))});
    both.start(loopback);
    v4_only.start(loopback);
    const auto ask6 = [](std::uint16_t port) -> std::string {
        sockaddr_in6 at{};
        at.sin6_family = AF_INET6;
        at.sin6_addr = in6addr_loopback;
        at.sin6_port = htons(port);
        ctr::unique_fd client(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
        setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
        if (connect(client.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0)
            return std::string("connect: ") + std::strerror(errno);
        if (!send_all(client.get(), "six")) return "send failed";
        shutdown(client.get(), SHUT_WR);
        return receive_all(client.get()).data;
    };
    EXPECT_EQ(ask6(both.host_port(0)), "six");
    EXPECT_EQ(ask6(v4_only.host_port(0)), "connect: Connection refused");
    EXPECT_EQ(both.mappings().size(), 1u);
    // IPv4 as before, on the same port.
    ctr::unique_fd v4 = tcp_connect(both.host_port(0));
    ASSERT_TRUE(send_all(v4.get(), "four"));
    shutdown(v4.get(), SHUT_WR);
    EXPECT_EQ(receive_all(v4.get()).data, "four");
}

TEST(port_forward, parse_range_reads_docker_ranges) {
    using list = std::vector<port_mapping>;
    EXPECT_EQ(port_mapping::parse_range("8000-8003:80-83"),
              (list{{protocol::tcp, {}, 8000, 80}, {protocol::tcp, {}, 8001, 81}, {protocol::tcp, {}, 8002, 82},
                    {protocol::tcp, {}, 8003, 83}}));
    EXPECT_EQ(port_mapping::parse_range("127.0.0.1:5353-5354:53-54/udp"),
              (list{{protocol::udp, loopback, 5353, 53}, {protocol::udp, loopback, 5354, 54}}));
    // Container ports alone, or after an address: the kernel picks each host port.
    EXPECT_EQ(port_mapping::parse_range("80-81"), (list{{protocol::tcp, {}, 0, 80}, {protocol::tcp, {}, 0, 81}}));
    EXPECT_EQ(port_mapping::parse_range("127.0.0.1::80-81"),
              (list{{protocol::tcp, loopback, 0, 80}, {protocol::tcp, loopback, 0, 81}}));
    EXPECT_EQ(port_mapping::parse_range("9000-9000:90-90"), (list{{protocol::tcp, {}, 9000, 90}}));
    EXPECT_EQ(port_mapping::parse_range("65534-65535:65534-65535").size(), 2u);
    // Without a range, what parse reads.
    EXPECT_EQ(port_mapping::parse_range("127.0.0.1:8080:80/udp"), (list{port_mapping::parse("127.0.0.1:8080:80/udp")}));
}

TEST(port_forward, parse_range_rejects_with_the_reason) {
    const std::pair<const char*, const char*> cases[] = {
        {"8000-8003:80", "the host ports (4) and the container ports (1) must be ranges of the same length"},
        {"8000:80-83", "the host ports (1) and the container ports (4) must be ranges of the same length"},
        {"8000-8001:80-83", "must be ranges of the same length"},
        {"8003-8000:80-83", "the host port range '8003-8000' ends before it starts"},
        {"8000-8003:83-80", "the container port range '83-80' ends before it starts"},
        {"8000-:80-83", "the host port range must be FIRST-LAST"},
        {"8000-8001:-81", "the container port range must be FIRST-LAST"},
        {"8000-8001-8002:80-82", "the host port range must be FIRST-LAST"},
        {"8000-70000:80-62080", "the host port range must be FIRST-LAST, two numbers from 1 to 65535"},
        {"0-1:80-81", "the host port range must start at 1 or above"},
        {"8000-8001:0-1", "the container port must be a number from 1 to 65535"},
        {"8000-8001:80-81/sctp", "must be tcp or udp"},
        {"1.2.3:8000-8001:80-81", "'1.2.3' is not an IPv4 address"},
        {":80-81", "the host port is empty"},
        {"", "empty"},
    };
    for (const auto& [text, reason] : cases) {
        try {
            const auto m = port_mapping::parse_range(text);
            ADD_FAILURE() << "'" << text << "' parsed as " << m.size() << " mappings";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.code().value(), EINVAL) << e.what();
            EXPECT_EQ(e.path(), text);
            EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
        }
    }
}

// Sends `sent` to the port and reads what comes back, writing and reading
// at once: the relay's buffers are bounded, so a client that wrote
// everything before reading would stall.
received echo_through(std::uint16_t port, const std::string& sent) {
    ctr::unique_fd client = tcp_connect(port);
    std::thread writer([&] {
        EXPECT_TRUE(send_all(client.get(), sent));
        shutdown(client.get(), SHUT_WR);
    });
    received back = receive_all(client.get());
    writer.join();
    return back;
}

TEST(port_forward, tcp_round_trip_is_byte_exact_both_ways) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);

    const std::string sent = random_bytes(4 << 20, 1);
    const received back = echo_through(forwarder.host_port(0), sent);
    EXPECT_EQ(back.ending, 0) << std::strerror(back.ending);
    ASSERT_EQ(back.data.size(), sent.size());
    EXPECT_TRUE(back.data == sent) << "the bytes came back changed";

    const auto stats = forwarder.stats();
    EXPECT_EQ(stats.tcp_connections, 1u);
    EXPECT_EQ(stats.bytes_to_container, sent.size());
    EXPECT_EQ(stats.bytes_from_container, sent.size());
    EXPECT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 0; })) << "the finished connection stays open";
}

TEST(port_forward, half_close_from_the_client_keeps_the_reply_coming) {
    // Replies only once the client's end of stream has arrived.
    tcp_server server([](int fd) {
        const received request = receive_all(fd);
        send_all(fd, "got " + std::to_string(request.data.size()) + " bytes: " + request.data);
    });
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);

    ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
    ASSERT_TRUE(send_all(client.get(), "hello"));
    ASSERT_EQ(shutdown(client.get(), SHUT_WR), 0);
    const received reply = receive_all(client.get());
    EXPECT_EQ(reply.ending, 0) << std::strerror(reply.ending);
    EXPECT_EQ(reply.data, "got 5 bytes: hello");
}

TEST(port_forward, half_close_from_the_server_keeps_the_request_coming) {
    std::string heard;
    bool server_done = false;
    std::mutex mutex;
    tcp_server server([&](int fd) {
        send_all(fd, "banner");
        shutdown(fd, SHUT_WR);
        const received request = receive_all(fd);
        std::lock_guard lock(mutex);
        heard = request.data;
        server_done = true;
    });
    {
        port_forwarder forwarder({tcp_to(server.port())});
        forwarder.start(loopback);
        ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
        const received banner = receive_all(client.get());
        EXPECT_EQ(banner.ending, 0) << std::strerror(banner.ending);
        EXPECT_EQ(banner.data, "banner");
        // The server's side is closed for writing; ours still carries data.
        ASSERT_TRUE(send_all(client.get(), "after the banner"));
        ASSERT_EQ(shutdown(client.get(), SHUT_WR), 0);
        ASSERT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 0; }));
    }
    // The relay closes as soon as it has passed the end of stream on; the
    // server's handler may still be reading it.
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return server_done;
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(heard, "after the banner");
}

TEST(port_forward, many_concurrent_connections_keep_their_own_bytes) {
    constexpr std::size_t count = 50;
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);

    // All open at once, all with data in flight before any is read back.
    std::vector<ctr::unique_fd> clients;
    std::vector<std::string> sent;
    for (std::size_t i = 0; i < count; ++i) {
        clients.push_back(tcp_connect(forwarder.host_port(0)));
        sent.push_back(random_bytes(32 * 1024, static_cast<unsigned>(100 + i)));
    }
    for (std::size_t i = 0; i < count; ++i) {
        ASSERT_TRUE(send_all(clients[i].get(), sent[i]));
        shutdown(clients[i].get(), SHUT_WR);
    }
    for (std::size_t i = 0; i < count; ++i) {
        const received back = receive_all(clients[i].get());
        EXPECT_EQ(back.ending, 0) << "connection " << i << ": " << std::strerror(back.ending);
        EXPECT_TRUE(back.data == sent[i]) << "connection " << i << " got " << back.data.size() << " bytes back";
    }
    EXPECT_EQ(forwarder.stats().tcp_connections, static_cast<std::uint64_t>(count));
    EXPECT_EQ(forwarder.stats().tcp_connect_failures, 0u);
}

TEST(port_forward, refused_target_resets_the_client_and_spares_the_others) {
    tcp_server server(echo);
    // Bound but not listening: connections to it are refused, and the port
    // cannot be taken by anyone else while the test runs.
    ctr::unique_fd closed = bound_socket(SOCK_STREAM);
    port_forwarder forwarder({tcp_to(server.port()), tcp_to(bound_port(closed.get()))});
    forwarder.start(loopback);

    ctr::unique_fd working = tcp_connect(forwarder.host_port(0));
    ASSERT_TRUE(send_all(working.get(), "before"));
    char buffer[16];
    ASSERT_EQ(recv(working.get(), buffer, 6, MSG_WAITALL), 6);
    EXPECT_EQ(std::string(buffer, 6), "before");

    ctr::unique_fd refused = tcp_connect(forwarder.host_port(1));
    const received nothing = receive_all(refused.get());
    EXPECT_EQ(nothing.ending, ECONNRESET) << "a refused target must reset the client, not end it cleanly: " << std::strerror(nothing.ending);
    EXPECT_EQ(nothing.data, "");
    EXPECT_EQ(forwarder.stats().tcp_connect_failures, 1u);

    ASSERT_TRUE(send_all(working.get(), "after"));
    ASSERT_EQ(recv(working.get(), buffer, 5, MSG_WAITALL), 5);
    EXPECT_EQ(std::string(buffer, 5), "after");
}

TEST(port_forward, udp_clients_get_their_own_replies_from_the_host_port) {
    udp_echo_server server;
    port_forwarder forwarder({udp_to(server.port())});
    forwarder.start(loopback);
    const std::uint16_t port = forwarder.host_port(0);

    ctr::unique_fd one = bound_socket(SOCK_DGRAM);
    ctr::unique_fd two = bound_socket(SOCK_DGRAM);
    const answer a = ask(one.get(), port, "first");
    const answer b = ask(two.get(), port, "second");
    EXPECT_EQ(a.data, "reply:first");
    EXPECT_EQ(b.data, "reply:second");
    // The replies come from the address and port the clients sent to.
    for (const answer* r : {&a, &b}) {
        EXPECT_EQ(ntohs(r->from.sin_port), port);
        EXPECT_EQ(ntohl(r->from.sin_addr.s_addr), INADDR_LOOPBACK);
    }
    // A client's next datagram goes through the session it already has.
    EXPECT_EQ(ask(one.get(), port, "again").data, "reply:again");
    EXPECT_EQ(ask(one.get(), port, "").data, "reply:");

    EXPECT_EQ(server.sources().size(), 2u) << "one socket towards the target per client";
    const auto stats = forwarder.stats();
    EXPECT_EQ(stats.udp_sessions, 2u);
    EXPECT_EQ(stats.bytes_to_container, std::string("firstsecondagain").size());
}

TEST(port_forward, udp_sessions_expire_when_idle) {
    udp_echo_server server;
    port_forwarder forwarder({udp_to(server.port())}, {.udp_idle_timeout = 50ms});
    forwarder.start(loopback);

    ctr::unique_fd client = bound_socket(SOCK_DGRAM);
    EXPECT_EQ(ask(client.get(), forwarder.host_port(0), "ping").data, "reply:ping");
    EXPECT_EQ(forwarder.stats().udp_sessions, 1u);
    ASSERT_TRUE(eventually([&] { return forwarder.stats().udp_open == 0; })) << "the idle session never ended";
    // The same client after its session ended gets a new one.
    EXPECT_EQ(ask(client.get(), forwarder.host_port(0), "pong").data, "reply:pong");
    EXPECT_EQ(forwarder.stats().udp_sessions, 2u);
}

TEST(port_forward, busy_port_fails_with_the_address_and_leaves_nothing_open) {
    ctr::unique_fd busy_tcp = bound_socket(SOCK_STREAM);
    ASSERT_EQ(listen(busy_tcp.get(), 1), 0);
    ctr::unique_fd busy_udp = bound_socket(SOCK_DGRAM);
    const std::uint16_t tcp_port = bound_port(busy_tcp.get());
    const std::uint16_t udp_port = bound_port(busy_udp.get());

    const auto fds_before = ctr_test::open_fds();
    const std::pair<port_mapping, std::string> cases[] = {
        {{protocol::tcp, loopback, tcp_port, 80}, "127.0.0.1:" + std::to_string(tcp_port) + "/tcp"},
        {{protocol::udp, loopback, udp_port, 53}, "127.0.0.1:" + std::to_string(udp_port) + "/udp"},
    };
    for (const auto& [busy, where] : cases) {
        try {
            // The free mapping before it is opened first and must be closed again.
            port_forwarder forwarder({tcp_to(80), busy});
            ADD_FAILURE() << "publishing " << busy.to_string() << " succeeded";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::publish_port) << e.what();
            EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
            EXPECT_EQ(e.path(), where);
            EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

TEST(port_forward, host_port_zero_reports_the_bound_port) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port()), udp_to(53)});
    const std::uint16_t port = forwarder.host_port(0);
    EXPECT_NE(port, 0);
    EXPECT_NE(forwarder.host_port(1), 0);
    EXPECT_EQ(forwarder.mappings()[0].host_port, port);
    EXPECT_EQ(forwarder.mappings()[0].container_port, server.port());
    EXPECT_THROW((void)forwarder.host_port(2), std::out_of_range);

    // The port is really ours: nobody else can listen on it.
    ctr::unique_fd rival(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in a = loopback_address(port);
    EXPECT_NE(bind(rival.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(errno, EADDRINUSE);

    forwarder.start(loopback);
    ctr::unique_fd client = tcp_connect(port);
    ASSERT_TRUE(send_all(client.get(), "x"));
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(receive_all(client.get()).data, "x");
}

TEST(port_forward, destructor_with_live_connections_returns_and_leaks_nothing) {
    const auto fds_before = ctr_test::open_fds();
    {
        tcp_server server(echo);
        std::vector<ctr::unique_fd> clients;
        {
            port_forwarder forwarder({tcp_to(server.port())});
            forwarder.start(loopback);
            // Connections in every state: idle, and with more data sent than
            // anyone has read, so that the relay holds full buffers and has
            // stopped reading some sides.
            const std::string load = random_bytes(512 * 1024, 7);
            for (int i = 0; i < 10; ++i) {
                clients.push_back(tcp_connect(forwarder.host_port(0)));
                if (i % 2 == 0) continue;
                int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
                (void)send(clients.back().get(), load.data(), load.size(), flags);
            }
            ASSERT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 10; }));
        }
        // Every client learns that its connection ended.
        for (auto& c : clients) {
            const received rest = receive_all(c.get());
            EXPECT_TRUE(rest.ending == 0 || rest.ending == ECONNRESET) << std::strerror(rest.ending);
        }
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

TEST(port_forward, start_twice_is_an_error) {
    port_forwarder forwarder({tcp_to(80)});
    forwarder.start(loopback);
    try {
        forwarder.start(loopback);
        ADD_FAILURE() << "the second start succeeded";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::prepare) << e.what();
        EXPECT_EQ(e.code().value(), EALREADY) << e.what();
    }
}

TEST(port_forward, moved_forwarder_keeps_relaying) {
    tcp_server server(echo);
    port_forwarder first({tcp_to(server.port())});
    first.start(loopback);
    port_forwarder second(std::move(first));
    port_forwarder third({tcp_to(80)});
    third = std::move(second);
    EXPECT_THROW(first.start(loopback), ctr::error);

    ctr::unique_fd client = tcp_connect(third.host_port(0));
    ASSERT_TRUE(send_all(client.get(), "moved"));
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(receive_all(client.get()).data, "moved");
}

TEST(port_forward, bad_options_are_refused) {
    EXPECT_THROW((void)port_forwarder({tcp_to(0)}), ctr::error);
    EXPECT_THROW((void)port_forwarder({tcp_to(80)}, {.tcp_buffer_size = 0}), ctr::error);
    EXPECT_THROW((void)port_forwarder({udp_to(53)}, {.udp_idle_timeout = 0ms}), ctr::error);
}

// A small buffer of an odd size makes a transfer run through the full-buffer
// paths over and over (reading paused, the buffer compacted, reading resumed
// as the other side drains).
TEST(port_forward, tiny_buffers_still_relay_everything) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())}, {.tcp_buffer_size = 1021});
    forwarder.start(loopback);
    const std::string sent = random_bytes(1 << 20, 3);
    const received back = echo_through(forwarder.host_port(0), sent);
    EXPECT_EQ(back.ending, 0) << std::strerror(back.ending);
    EXPECT_TRUE(back.data == sent) << back.data.size() << " bytes came back";
}

// ---- failures made to happen with detail::sys fault injection ----

namespace {

struct fault_case {
    const char* name;
    call which;
    int error;
    bool at_start;      // in start() rather than in the constructor
    const char* names;  // what the message must name
};
void PrintTo(const fault_case& c, std::ostream* out) { *out << c.name; }

}  // namespace

class port_forward_fault : public testing::TestWithParam<fault_case> {};

TEST_P(port_forward_fault, names_the_step_and_leaks_nothing) {
    const fault_case& c = GetParam();
    const auto fds_before = ctr_test::open_fds();
    {
        std::optional<port_forwarder> forwarder;
        if (c.at_start) forwarder.emplace(std::vector{tcp_to(80), udp_to(53)});
        fault_injection fault(c.which, c.error);
        try {
            if (c.at_start) forwarder->start(loopback);
            else forwarder.emplace(std::vector{tcp_to(80), udp_to(53)});
            ADD_FAILURE() << "no error";
        } catch (const ctr::error& e) {
            EXPECT_EQ(e.step(), ctr::step::publish_port) << e.what();
            EXPECT_EQ(e.code().value(), c.error) << e.what();
            EXPECT_NE(std::string(e.what()).find(c.names), std::string::npos) << e.what();
        }
        EXPECT_TRUE(fault.exhausted()) << "the fault was never hit";
    }
    EXPECT_EQ(ctr_test::open_fds(), fds_before);
}

INSTANTIATE_TEST_SUITE_P(
    port_forward, port_forward_fault,
    testing::Values(fault_case{"socket", call::socket, EMFILE, false, "'127.0.0.1:0/tcp' (socket)"},
                    fault_case{"reuseaddr", call::setsockopt, ENOPROTOOPT, false, "(setsockopt SO_REUSEADDR)"},
                    fault_case{"bind", call::bind, EACCES, false, "'127.0.0.1:0/tcp' (bind)"},
                    fault_case{"listen", call::listen, EADDRINUSE, false, "'127.0.0.1:0/tcp' (listen)"},
                    fault_case{"getsockname", call::getsockname, ENOBUFS, false, "(getsockname)"},
                    fault_case{"epoll_create1", call::epoll_create1, EMFILE, true, "(epoll_create1)"},
                    fault_case{"eventfd2", call::eventfd2, ENFILE, true, "(eventfd2)"},
                    fault_case{"epoll_ctl", call::epoll_ctl, ENOSPC, true, "(epoll_ctl)"},
                    fault_case{"signal_mask", call::rt_sigprocmask, EINVAL, true, "block signals"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(port_forward, failed_connect_in_the_relay_resets_only_that_client) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    {
        fault_injection fault(call::connect, ENETUNREACH);
        ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
        const received nothing = receive_all(client.get());
        EXPECT_EQ(nothing.ending, ECONNRESET) << "a failed connect must reset the client: " << std::strerror(nothing.ending);
        EXPECT_TRUE(fault.exhausted());
    }
    EXPECT_EQ(forwarder.stats().tcp_connect_failures, 1u);
    ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
    ASSERT_TRUE(send_all(client.get(), "still works"));
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(receive_all(client.get()).data, "still works");
}

TEST(port_forward, accept_out_of_fds_pauses_and_recovers) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    fault_injection fault(call::accept4, EMFILE);
    // The connection waits in the backlog while accepting is paused.
    ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
    ASSERT_TRUE(send_all(client.get(), "patience"));
    shutdown(client.get(), SHUT_WR);
    EXPECT_EQ(receive_all(client.get()).data, "patience");
    EXPECT_TRUE(fault.exhausted());
}

TEST(port_forward, close_reports_a_failed_relay_loop) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    {
        fault_injection fault(call::epoll_wait, EBADF);
        forwarder.start(loopback);
        ASSERT_TRUE(eventually([&] { return forwarder.stats().loop_error != 0; }));
    }
    EXPECT_EQ(forwarder.stats().loop_error, EBADF);
    // The failed loop closed its listener: clients are refused, not left hanging.
    EXPECT_THROW((void)tcp_connect(forwarder.host_port(0)), std::runtime_error);
    try {
        forwarder.close();
        ADD_FAILURE() << "close reported nothing";
    } catch (const ctr::error& e) {
        EXPECT_EQ(e.step(), ctr::step::publish_port) << e.what();
        EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
    EXPECT_NO_THROW(forwarder.close());  // reported once
}

// ---- bulk, many connections, resets and the splice fallback ----

namespace {

// FNV-1a over a stream, so that the two ends can compare 100 MB without
// holding them.
struct checksum {
    std::uint64_t value = 14695981039346656037ull;
    std::uint64_t bytes = 0;
    void add(const char* data, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) {
            value ^= static_cast<unsigned char>(data[i]);
            value *= 1099511628211ull;
        }
        bytes += size;
    }
};

// Reads until the client's end of stream, then answers with the byte count
// and checksum of what it read.
void checksum_sink(int fd) {
    checksum sum;
    char chunk[65536];
    for (;;) {
        const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return;
        if (n == 0) break;
        sum.add(chunk, static_cast<std::size_t>(n));
    }
    send_all(fd, std::to_string(sum.bytes) + " " + std::to_string(sum.value));
}

// Raises the soft limit on open files to at least `wanted` (within the hard
// limit) for as long as it lives; ok() says whether that worked.
class fd_limit {
public:
    explicit fd_limit(rlim_t wanted) {
        getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit raised = saved_;
        if (raised.rlim_cur >= wanted) return;
        raised.rlim_cur = std::min(wanted, raised.rlim_max);
        ok_ = raised.rlim_cur >= wanted && setrlimit(RLIMIT_NOFILE, &raised) == 0;
        changed_ = ok_;
    }
    ~fd_limit() {
        if (changed_) setrlimit(RLIMIT_NOFILE, &saved_);
    }
    bool ok() const { return ok_; }

private:
    rlimit saved_{};
    bool ok_ = true;
    bool changed_ = false;
};

// Waits until the process has exactly the fds it had, the servers' threads
// having closed theirs; true when it got there.
bool fds_back_to(const std::vector<int>& before) {
    return eventually([&] { return ctr_test::open_fds() == before; });
}

}  // namespace

TEST(port_forward, hundred_megabytes_arrive_with_the_checksum_intact) {
    tcp_server server(checksum_sink);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);

    constexpr std::size_t total = 100u << 20;
    ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
    std::mt19937_64 generator(15);
    std::string chunk(1u << 20, '\0');
    checksum sent;
    for (std::size_t done = 0; done < total; done += chunk.size()) {
        for (std::size_t i = 0; i < chunk.size(); i += 8) {
            const std::uint64_t word = generator();
            std::memcpy(chunk.data() + i, &word, 8);
        }
        sent.add(chunk.data(), chunk.size());
        ASSERT_TRUE(send_all(client.get(), chunk)) << "after " << done << " bytes: " << std::strerror(errno);
    }
    ASSERT_EQ(shutdown(client.get(), SHUT_WR), 0);
    const received reply = receive_all(client.get());
    EXPECT_EQ(reply.ending, 0) << std::strerror(reply.ending);
    EXPECT_EQ(reply.data, std::to_string(total) + " " + std::to_string(sent.value));

    const auto stats = forwarder.stats();
    EXPECT_EQ(stats.bytes_to_container, total);
    EXPECT_EQ(stats.tcp_copied_directions, 0u) << "the relay copied instead of splicing";
}

TEST(port_forward, two_hundred_concurrent_connections_complete) {
    constexpr std::size_t count = 200;
    // Each connection holds two fds here, one in the server and six in the
    // relay (two sockets, two pipes): more than a soft limit of 1024.
    const fd_limit limit(4096);
    if (!limit.ok()) GTEST_SKIP() << "RLIMIT_NOFILE cannot be raised to 4096 for 200 connections";
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);

    std::vector<ctr::unique_fd> clients;
    std::vector<std::string> sent;
    for (std::size_t i = 0; i < count; ++i) {
        clients.push_back(tcp_connect(forwarder.host_port(0)));
        sent.push_back(random_bytes(16 * 1024, static_cast<unsigned>(1000 + i)));
    }
    // Every one open in the relay at once before any is answered.
    ASSERT_TRUE(eventually([&] { return forwarder.stats().tcp_open == count; }))
        << forwarder.stats().tcp_open << " of " << count << " open";
    for (std::size_t i = 0; i < count; ++i) {
        ASSERT_TRUE(send_all(clients[i].get(), sent[i]));
        shutdown(clients[i].get(), SHUT_WR);
    }
    for (std::size_t i = 0; i < count; ++i) {
        const received back = receive_all(clients[i].get());
        EXPECT_EQ(back.ending, 0) << "connection " << i << ": " << std::strerror(back.ending);
        EXPECT_TRUE(back.data == sent[i]) << "connection " << i << " got " << back.data.size() << " bytes back";
    }
    const auto stats = forwarder.stats();
    EXPECT_EQ(stats.tcp_connections, static_cast<std::uint64_t>(count));
    EXPECT_EQ(stats.tcp_connect_failures, 0u);
    EXPECT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 0; }));
}

// Clients that reset their connection with bytes in flight both ways: the
// relay drops the link, its sockets and pipes, and goes on serving. Writing
// to a reset peer through splice raises SIGPIPE in the relay thread, which
// must not end the process.
TEST(port_forward, client_reset_mid_transfer_leaks_no_fds_or_pipes) {
    // Streams to the client until that fails, while reading what comes.
    tcp_server server([](int fd) {
        const std::string load = random_bytes(256 * 1024, 9);
        std::thread reader([fd] { (void)receive_all(fd); });
        while (send_all(fd, load)) {
        }
        shutdown(fd, SHUT_RDWR);
        reader.join();
    });
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    const auto fds_before = ctr_test::open_fds();

    const std::string load = random_bytes(1 << 20, 11);
    for (int i = 0; i < 8; ++i) {
        ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
        ASSERT_TRUE(send_all(client.get(), load));
        char some[4096];
        ASSERT_GT(recv(client.get(), some, sizeof some, MSG_WAITALL), 0);
        // The count would see a leak: a live connection holds eight fds
        // (the client, the server's end, and the relay's two sockets and
        // two pipes).
        if (i == 0) {
            EXPECT_GE(ctr_test::open_fds().size(), fds_before.size() + 8);
        }
        // SO_LINGER with a zero timeout: close sends a reset, with unread
        // bytes in our receive queue and the relay's pipes full.
        const linger hard_close{1, 0};
        ASSERT_EQ(setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close), 0);
    }
    ASSERT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 0; }))
        << forwarder.stats().tcp_open << " connections still open after their clients reset";
    EXPECT_TRUE(fds_back_to(fds_before)) << ctr_test::open_fds().size() << " fds open, " << fds_before.size()
                                         << " before the connections";
    EXPECT_EQ(forwarder.stats().tcp_connections, 8u);

    // The relay still serves.
    ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
    char some[16];
    EXPECT_EQ(recv(client.get(), some, sizeof some, MSG_WAITALL), static_cast<ssize_t>(sizeof some));
}

// splice refused (as by a kernel or socket type without it) at the first
// call, or later with bytes already in a pipe: the direction goes on by
// copying, with what its pipe held, and no byte is lost.
TEST(port_forward, refused_splice_falls_back_to_copying) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    std::uint64_t copied = 0;
    for (const int skip : {0, 1, 2, 5, 40}) {
        fault_injection fault(call::splice, EINVAL, skip, 1);
        const std::string sent = random_bytes(1 << 20, static_cast<unsigned>(20 + skip));
        const received back = echo_through(forwarder.host_port(0), sent);
        EXPECT_EQ(back.ending, 0) << "skip " << skip << ": " << std::strerror(back.ending);
        EXPECT_TRUE(back.data == sent) << "skip " << skip << ": " << back.data.size() << " bytes came back";
        EXPECT_TRUE(fault.exhausted()) << "skip " << skip << ": splice was never refused";
        EXPECT_EQ(forwarder.stats().tcp_copied_directions, ++copied) << "skip " << skip;
    }
    {
        // Refused every time: both directions copy from the start.
        fault_injection fault(call::splice, ENOSYS, 0, -1);
        const std::string sent = random_bytes(1 << 20, 30);
        EXPECT_TRUE(echo_through(forwarder.host_port(0), sent).data == sent);
    }
    EXPECT_EQ(forwarder.stats().tcp_copied_directions, copied + 2);
}

TEST(port_forward, no_pipe_to_be_had_relays_by_copying) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    fault_injection fault(call::pipe2, EMFILE, 0, -1);
    const std::string sent = random_bytes(1 << 20, 31);
    const received back = echo_through(forwarder.host_port(0), sent);
    EXPECT_EQ(back.ending, 0) << std::strerror(back.ending);
    EXPECT_TRUE(back.data == sent) << back.data.size() << " bytes came back";
    EXPECT_EQ(forwarder.stats().tcp_copied_directions, 2u);
}

// A splice that fails otherwise (here as if the target reset) is a broken
// connection, not a reason to copy: the client is reset.
TEST(port_forward, failed_splice_resets_the_client) {
    tcp_server server(echo);
    port_forwarder forwarder({tcp_to(server.port())});
    forwarder.start(loopback);
    {
        fault_injection fault(call::splice, ECONNRESET, 0, -1);
        ctr::unique_fd client = tcp_connect(forwarder.host_port(0));
        ASSERT_TRUE(send_all(client.get(), "doomed"));
        const received nothing = receive_all(client.get());
        EXPECT_EQ(nothing.ending, ECONNRESET) << std::strerror(nothing.ending);
    }
    EXPECT_TRUE(eventually([&] { return forwarder.stats().tcp_open == 0; }));
    EXPECT_EQ(forwarder.stats().tcp_copied_directions, 0u);
}
