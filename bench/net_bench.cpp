// Network costs, each against a baseline measured in the same run:
//
// - spawn + wait of the static no-op in a new network namespace with a veth
//   pair (options::network), against the same namespace with only lo;
// - net::port_forwarder on 127.0.0.1: bulk TCP, 1-byte TCP and UDP round
//   trips and TCP connection setup through it, against the same traffic
//   straight over loopback to the same servers. Bulk TCP also runs through
//   a forwarder with 1 MiB pipes (tcp_buffer_size), and reports the CPU the
//   whole process spent per GiB (client, relay and server threads), which
//   says more than throughput on a machine whose cores are shared. Issue 15's
//   target for the published port is at least 0.80 of direct throughput.
// - A published port of a sandbox: servers in the network namespace of a
//   spawned sandbox with a veth, reached from the benchmark's namespace (the
//   host) straight at the sandbox's address, against the same servers
//   through a forwarder on 127.0.0.1 that relays to that address, as
//   ctr-run -p does without nftables, and through the kernel's DNAT to it
//   (net::port_nat on 127.0.0.1), as ctr-run -p does with nftables.
//
// Before anything, the benchmark enters a network namespace of its own (and
// a user namespace when not root) and brings its lo up: every veth and
// socket here lives there, and nothing touches the machine's network.
// Ratios are printed at the end, never asserted.
#include <ctr/ctr.hpp>

#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace net = ctr::net;

const char* const noop = CTR_NOOP_STATIC;
constexpr std::size_t bulk_bytes = 64u << 20;
// Hang guards only: a lost peer ends a benchmark with an error, not a hang.
constexpr timeval socket_timeout{10, 0};

bool write_file(const char* path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out.flush());
}

ino_t netns_inode() {
    struct stat st {};
    return stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

// A network namespace of our own, so that the veths spawn makes and every
// socket here stay off the machine's network; a mount namespace too, with /
// private, as the test main has, so that nothing a spawn path mounts could
// reach the machine either. Unshared while the process has one thread, as
// CLONE_NEWUSER requires; the threads started later inherit it. Returns
// false, with errno, when any step fails: nothing is measured then.
bool enter_private_network_namespace() {
    const ino_t before = netns_inode();
    if (geteuid() != 0) {
        const uid_t uid = geteuid();
        const gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) return false;
        write_file("/proc/self/setgroups", "deny");
        if (!write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
            !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
            errno = EPERM;
            return false;
        }
    } else if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) {
        return false;
    }
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
    if (before == 0 || netns_inode() == before) {
        errno = EINVAL;
        return false;
    }
    // The new namespace has only lo, and it is down.
    ctr::net::configure_interface("lo", ctr::net::ipv4_interface::parse("127.0.0.1/8"));
    return true;
}

// ---- spawn ----

// Besides the wall time per iteration, where it goes: spawn() until it
// returns (the veth is made and configured by then), wait(), and the end of
// the child handle (which, since the pair is left to the child's namespace, costs nothing).
void spawn_netns(benchmark::State& state, const ctr::process::options& opts) {
    using clock = std::chrono::steady_clock;
    clock::duration spawning{}, waiting{}, ending{};
    try {
        for (auto _ : state) {
            const auto start = clock::now();
            std::optional<ctr::process::child> child = ctr::process::spawn({noop}, opts);
            const auto spawned = clock::now();
            const bool made_veth = child->network() != nullptr;
            const auto result = child->wait();
            const auto waited = clock::now();
            child.reset();
            const auto ended = clock::now();
            spawning += spawned - start;
            waiting += waited - spawned;
            ending += ended - waited;
            if (opts.network && !made_veth) {
                state.SkipWithError("spawn made no veth");
                break;
            }
            if (result.exit_code != 0) {
                state.SkipWithError("child failed");
                break;
            }
        }
    } catch (const ctr::error& e) {
        state.SkipWithError(e.what());
    }
    const auto per_iteration_us = [](clock::duration d) {
        return benchmark::Counter(std::chrono::duration<double, std::micro>(d).count(),
                                  benchmark::Counter::kAvgIterations);
    };
    state.counters["spawn_us"] = per_iteration_us(spawning);
    state.counters["wait_us"] = per_iteration_us(waiting);
    state.counters["end_us"] = per_iteration_us(ending);
}

// ---- sockets ----

std::string failure_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }
std::string failure(const char* what) { return failure_text(what); }

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

void set_timeouts(int fd) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &socket_timeout, sizeof socket_timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &socket_timeout, sizeof socket_timeout);
}

void set_nodelay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A socket of `type` bound to 127.0.0.1 on a port the kernel picks.
ctr::unique_fd bound_socket(int type, std::uint16_t& port) {
    ctr::unique_fd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    set_timeouts(fd.get());
    sockaddr_in a = loopback(0);
    socklen_t length = sizeof a;
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &length) != 0)
        return {};
    port = ntohs(a.sin_port);
    return fd;
}

// Connected to `address`:`port` (127.0.0.1 unless given), or an empty fd
// (errno says why).
ctr::unique_fd connect_to(int type, std::uint16_t port, in_addr_t address = htonl(INADDR_LOOPBACK)) {
    ctr::unique_fd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    set_timeouts(fd.get());
    if (type == SOCK_STREAM) set_nodelay(fd.get());
    sockaddr_in a = loopback(port);
    a.sin_addr.s_addr = address;
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return {};
    return fd;
}

bool send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

bool receive_exactly(int fd, char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = recv(fd, data, size, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// A TCP server on 127.0.0.1 that serves one connection at a time with
// `handler`, on a thread of its own. Every client here waits for its
// connection to end before it opens the next, so one at a time is enough,
// and the server costs the same with and without the forwarder in between.
class tcp_server {
public:
    explicit tcp_server(std::function<void(int)> handler) : handler_(std::move(handler)) {
        listener_ = bound_socket(SOCK_STREAM, port_);
        if (!listener_ || listen(listener_.get(), 128) != 0) throw std::runtime_error("tcp server: listen");
        thread_ = std::thread([this] { serve(); });
    }
    // On a listening socket made elsewhere (in the sandbox's namespace).
    tcp_server(std::function<void(int)> handler, ctr::unique_fd listener)
        : handler_(std::move(handler)), listener_(std::move(listener)) {
        sockaddr_in a{};
        socklen_t length = sizeof a;
        if (!listener_ || getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &length) != 0)
            throw std::runtime_error("tcp server: getsockname");
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~tcp_server() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    void serve() {
        while (!stop_) {
            // Polled with a short timeout so that the destructor is heard.
            pollfd p{listener_.get(), POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            ctr::unique_fd connection(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!connection) continue;
            set_timeouts(connection.get());
            set_nodelay(connection.get());
            handler_(connection.get());
        }
    }

    std::function<void(int)> handler_;
    ctr::unique_fd listener_;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Sends back what it reads until the client's end of stream, then closes.
void echo(int fd) {
    char buffer[65536];
    for (;;) {
        const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || !send_all(fd, buffer, static_cast<std::size_t>(n))) return;
    }
}

// Reads until the client's end of stream, then answers with the byte count
// (so the client knows everything arrived) and closes.
void sink(int fd) {
    std::vector<char> buffer(1u << 20);
    std::uint64_t total = 0;
    for (;;) {
        const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return;
        if (n == 0) break;
        total += static_cast<std::uint64_t>(n);
    }
    send_all(fd, reinterpret_cast<const char*>(&total), sizeof total);
}

// A UDP echo server on 127.0.0.1, on a thread of its own.
class udp_echo_server {
public:
    udp_echo_server() {
        socket_ = bound_socket(SOCK_DGRAM, port_);
        if (!socket_) throw std::runtime_error("udp server: bind");
        const timeval tick{0, 100'000};  // so that the destructor is heard
        setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
        thread_ = std::thread([this] { serve(); });
    }
    ~udp_echo_server() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    void serve() {
        char buffer[65536];
        while (!stop_) {
            sockaddr_in from{};
            socklen_t length = sizeof from;
            const ssize_t n = recvfrom(socket_.get(), buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from),
                                       &length);
            if (n >= 0)
                sendto(socket_.get(), buffer, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from),
                       length);
        }
    }

    ctr::unique_fd socket_;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// A TCP socket listening on 0.0.0.0 (a port the kernel picks) in the
// network namespace `netns_fd`: made on a thread that enters it, since a
// socket stays in the namespace it was made in.
ctr::unique_fd listener_in(int netns_fd) {
    ctr::unique_fd out;
    std::thread([&] {
        if (setns(netns_fd, CLONE_NEWNET) != 0) return;
        ctr::unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        if (!fd || bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || listen(fd.get(), 128) != 0)
            return;
        set_timeouts(fd.get());
        out = std::move(fd);
    }).join();
    if (!out) throw std::runtime_error(failure_text("listen in the sandbox's network namespace"));
    return out;
}

// A sandbox with a veth that only sleeps: its network namespace holds the
// servers of the sandbox routes. The handle kills it at the end.
struct sandbox {
    std::optional<ctr::process::child> child;
    ctr::unique_fd netns;
    net::ipv4_address address{};

    sandbox() {
        ctr::process::options opts;
        opts.network = net::veth{};
        child.emplace(ctr::process::spawn({"/bin/sleep", "3600"}, opts));
        address = child->network()->container_address.address;
        const std::string path = "/proc/" + std::to_string(child->pid()) + "/ns/net";
        netns.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!netns) throw std::runtime_error(failure_text(("open " + path).c_str()));
    }
};

// ---- traffic ----


// CPU time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// One connection per iteration: `bulk_bytes` to the sink, then its count back.
void tcp_bulk(benchmark::State& state, std::uint16_t port, in_addr_t address = htonl(INADDR_LOOPBACK)) {
    const std::vector<char> chunk(1u << 20, 'x');
    const double cpu_before = process_cpu_seconds();
    for (auto _ : state) {
        const ctr::unique_fd fd = connect_to(SOCK_STREAM, port, address);
        if (!fd) {
            state.SkipWithError(failure("connect").c_str());
            break;
        }
        bool sent = true;
        for (std::size_t done = 0; sent && done < bulk_bytes; done += chunk.size())
            sent = send_all(fd.get(), chunk.data(), chunk.size());
        std::uint64_t received = 0;
        if (!sent || shutdown(fd.get(), SHUT_WR) != 0 ||
            !receive_exactly(fd.get(), reinterpret_cast<char*>(&received), sizeof received) ||
            received != bulk_bytes) {
            state.SkipWithError(failure("bulk transfer").c_str());
            break;
        }
    }
    const auto moved = static_cast<std::uint64_t>(state.iterations()) * bulk_bytes;
    state.SetBytesProcessed(static_cast<std::int64_t>(moved));
    const double gib = static_cast<double>(moved) / (1u << 30);
    if (gib > 0) state.counters["cpu_s_per_GiB"] = (process_cpu_seconds() - cpu_before) / gib;
}

// One connection for the whole run; one byte there and back per iteration.
void ping_pong(benchmark::State& state, int type, std::uint16_t port, in_addr_t address = htonl(INADDR_LOOPBACK)) {
    const ctr::unique_fd fd = connect_to(type, port, address);
    if (!fd) {
        state.SkipWithError(failure("connect").c_str());
        return;
    }
    char byte = 'p';
    for (auto _ : state) {
        if (send(fd.get(), &byte, 1, MSG_NOSIGNAL) != 1 || recv(fd.get(), &byte, 1, 0) != 1) {
            state.SkipWithError(failure("round trip").c_str());
            break;
        }
    }
}

// A whole connection per iteration and no payload: connect, end of stream
// from the client, then the server's (after the forwarder, if any, has
// accepted, connected onwards and passed the end on), close.
void tcp_connect_close(benchmark::State& state, std::uint16_t port) {
    for (auto _ : state) {
        const ctr::unique_fd fd = connect_to(SOCK_STREAM, port);
        char byte = 0;
        if (!fd || shutdown(fd.get(), SHUT_WR) != 0 || recv(fd.get(), &byte, 1, 0) != 0) {
            state.SkipWithError(failure("connect and close").c_str());
            break;
        }
    }
}

// ---- summary ----

class net_ratios : public ctr_bench::ratio_reporter {
    void summary() override {
        std::printf("\nspawn + wait + end of the handle, static no-op (lower is better):\n");
        std::printf("  %-34s %9s %7s %9s %9s %9s\n", "", "total us", "ratio", "spawn()", "wait()", "~child()");
        for (const char* name : {"spawn/plain", "spawn/netns_lo", "spawn/netns_veth"}) {
            if (!has(name)) continue;
            std::printf("  %-34s %9.0f", name, time(name));
            if (has("spawn/netns_lo")) std::printf(" %6.2fx", time(name) / time("spawn/netns_lo"));
            std::printf(" %9.0f %9.0f %9.0f\n", counter(name, "spawn_us"), counter(name, "wait_us"),
                        counter(name, "end_us"));
        }
        if (has("spawn/netns_lo") && has("spawn/netns_veth")) {
            const double extra = time("spawn/netns_veth") - time("spawn/netns_lo");
            const double extra_spawn = counter("spawn/netns_veth", "spawn_us") - counter("spawn/netns_lo", "spawn_us");
            const double extra_end = counter("spawn/netns_veth", "end_us") - counter("spawn/netns_lo", "end_us");
            std::printf("  the veth over a netns with lo only: %+.0f us (%+.0f us in spawn(), %+.0f us in ~child())\n",
                        extra, extra_spawn, extra_end);
        }

        std::printf("\nnet::port_forwarder on 127.0.0.1 against direct loopback, same servers:\n");
        bulk("tcp_bulk_64MiB/direct", "tcp_bulk_64MiB/forwarded", "TCP bulk, 64 MiB");
        bulk("tcp_bulk_64MiB/direct", "tcp_bulk_64MiB/forwarded_1MiB_pipes", "TCP bulk, 64 MiB, 1 MiB pipes");
        latency("TCP 1-byte round trip", "tcp_ping_pong");
        latency("UDP 1-byte round trip", "udp_ping_pong");
        if (has("tcp_connect_close/direct") && has("tcp_connect_close/forwarded")) {
            const double direct = time("tcp_connect_close/direct"), forwarded = time("tcp_connect_close/forwarded");
            std::printf("  %-30s direct %8.0f /s     forwarded %8.0f /s     rate ratio %5.2f  (%.1f us vs %.1f us)\n",
                        "TCP connect + close", 1e6 / direct, 1e6 / forwarded, direct / forwarded, direct, forwarded);
        }
        std::printf("\na sandbox's published port (127.0.0.1, relayed to its veth address) against its address:\n");
        bulk("tcp_bulk_64MiB/sandbox_direct", "tcp_bulk_64MiB/sandbox_published", "TCP bulk, 64 MiB");
        latency("TCP 1-byte round trip", "tcp_ping_pong", "/sandbox_direct", "/sandbox_published");
        std::printf("\nthe same port by the kernel's DNAT (net::port_nat on 127.0.0.1) against its address:\n");
        bulk("tcp_bulk_64MiB/sandbox_direct", "tcp_bulk_64MiB/sandbox_dnat", "TCP bulk, 64 MiB");
        latency("TCP 1-byte round trip", "tcp_ping_pong", "/sandbox_direct", "/sandbox_dnat");
    }
    // Throughput both ways, the ratio against issue 15's goal, and the CPU
    // the whole process spent per GiB for each.
    void bulk(const std::string& direct_name, const std::string& forwarded_name, const char* label) {
        if (!has(direct_name) || !has(forwarded_name)) return;
        const double mib = static_cast<double>(bulk_bytes) / (1u << 20);
        const double direct = mib / (time(direct_name) / 1e6);
        const double forwarded = mib / (time(forwarded_name) / 1e6);
        const double ratio = forwarded / direct;
        std::printf("  %-30s direct %8.0f MiB/s  forwarded %8.0f MiB/s  throughput ratio %5.2f  goal >= 0.80: %s\n",
                    label, direct, forwarded, ratio, ratio >= 0.80 ? "met" : "MISSED");
        std::printf("  %-30s direct %8.2f s/GiB  forwarded %8.2f s/GiB  (CPU of all threads per GiB moved)\n", "",
                    counter(direct_name, "cpu_s_per_GiB"), counter(forwarded_name, "cpu_s_per_GiB"));
    }
    void latency(const char* label, const std::string& name, const std::string& direct_suffix = "/direct",
                 const std::string& forwarded_suffix = "/forwarded") {
        if (!has(name + direct_suffix) || !has(name + forwarded_suffix)) return;
        const double direct = time(name + direct_suffix), forwarded = time(name + forwarded_suffix);
        std::printf("  %-30s direct %8.1f us     forwarded %8.1f us     latency ratio %5.2f  (%+.1f us per round trip)\n",
                    label, direct, forwarded, forwarded / direct, forwarded - direct);
    }
};

}  // namespace

int main(int argc, char** argv) {
    try {
        if (!enter_private_network_namespace()) {
            std::fprintf(stderr, "net_bench: cannot enter a private network namespace (%s); nothing measured\n",
                         std::strerror(errno));
            return 0;
        }
    } catch (const ctr::error& e) {
        std::fprintf(stderr, "net_bench: bringing lo up: %s; nothing measured\n", e.what());
        return 0;
    }

    // Named rather than designated temporaries: g++ 12 at -O3 warns, wrongly,
    // that a temporary options' id_maps may be used uninitialized (-Werror).
    ctr::process::options plain, netns_only, with_veth;
    netns_only.namespaces = ctr::ns::network;
    with_veth.network = net::veth{};
    for (const auto& [name, opts] : {std::pair{"spawn/plain", &plain}, std::pair{"spawn/netns_lo", &netns_only},
                                     std::pair{"spawn/netns_veth", &with_veth}})
        benchmark::RegisterBenchmark(name, [o = opts](benchmark::State& s) { spawn_netns(s, *o); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();

    const tcp_server echo_server(echo), sink_server(sink);
    const udp_echo_server udp_server;
    const auto localhost = net::ipv4_address::parse("127.0.0.1");
    net::port_forwarder forwarder({
        {.proto = net::protocol::tcp, .host_address = localhost, .container_port = echo_server.port()},
        {.proto = net::protocol::tcp, .host_address = localhost, .container_port = sink_server.port()},
        {.proto = net::protocol::udp, .host_address = localhost, .container_port = udp_server.port()},
    });
    forwarder.start(localhost);
    // The same relay with pipes of 1 MiB: fewer, larger splices per byte.
    net::port_forwarder big_pipes(
        {{.proto = net::protocol::tcp, .host_address = localhost, .container_port = sink_server.port()}},
        {.tcp_buffer_size = 1u << 20});
    big_pipes.start(localhost);

    struct route {
        const char* name;
        std::uint16_t echo, sink, udp;
    };
    // Each kind direct, then forwarded: the two halves of a ratio run close
    // together, so that the machine's other load drifts less between them.
    const route routes[] = {{"direct", echo_server.port(), sink_server.port(), udp_server.port()},
                            {"forwarded", forwarder.host_port(0), forwarder.host_port(1), forwarder.host_port(2)}};
    const auto add = [](const std::string& name, auto body) {
        benchmark::RegisterBenchmark(name.c_str(), body)->Unit(benchmark::kMicrosecond)->UseRealTime();
    };
    for (const route r : routes)
        add(std::string("tcp_bulk_64MiB/") + r.name, [r](benchmark::State& s) { tcp_bulk(s, r.sink); });
    add("tcp_bulk_64MiB/forwarded_1MiB_pipes",
        [port = big_pipes.host_port(0)](benchmark::State& s) { tcp_bulk(s, port); });

    // The sandbox routes: direct to the sandbox's address, and through a
    // port published on 127.0.0.1 as ctr-run -p publishes it.
    std::optional<sandbox> box;
    std::optional<tcp_server> box_echo, box_sink;
    std::optional<net::port_forwarder> published;
    try {
        box.emplace();
        box_echo.emplace(echo, listener_in(box->netns.get()));
        box_sink.emplace(sink, listener_in(box->netns.get()));
        published.emplace(std::vector<net::port_mapping>{
            {.proto = net::protocol::tcp, .host_address = localhost, .container_port = box_sink->port()},
            {.proto = net::protocol::tcp, .host_address = localhost, .container_port = box_echo->port()}});
        published->start(box->address);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "net_bench: no sandbox routes: %s\n", e.what());
        published.reset();
    }
    // The same two ports by DNAT, where nftables is there.
    std::optional<net::port_nat> dnat;
    if (published) {
        try {
            dnat.emplace(net::port_nat::add(
                *box->child->network(),
                {{.proto = net::protocol::tcp, .host_address = localhost, .container_port = box_sink->port()},
                 {.proto = net::protocol::tcp, .host_address = localhost, .container_port = box_echo->port()}}));
        } catch (const ctr::error& e) {
            std::fprintf(stderr, "net_bench: no DNAT route: %s\n", e.what());
        }
    }
    if (published) {
        const in_addr_t box_address = box->address.to_in_addr().s_addr;
        const std::uint16_t sink_port = box_sink->port(), echo_port = box_echo->port();
        add("tcp_bulk_64MiB/sandbox_direct",
            [=](benchmark::State& s) { tcp_bulk(s, sink_port, box_address); });
        add("tcp_bulk_64MiB/sandbox_published", [port = published->host_port(0)](benchmark::State& s) { tcp_bulk(s, port); });
        add("tcp_ping_pong/sandbox_direct",
            [=](benchmark::State& s) { ping_pong(s, SOCK_STREAM, echo_port, box_address); });
        add("tcp_ping_pong/sandbox_published",
            [port = published->host_port(1)](benchmark::State& s) { ping_pong(s, SOCK_STREAM, port); });
    }
    if (dnat) {
        add("tcp_bulk_64MiB/sandbox_dnat",
            [port = dnat->mappings()[0].host_port](benchmark::State& s) { tcp_bulk(s, port); });
        add("tcp_ping_pong/sandbox_dnat",
            [port = dnat->mappings()[1].host_port](benchmark::State& s) { ping_pong(s, SOCK_STREAM, port); });
    }
    for (const route r : routes)
        add(std::string("tcp_ping_pong/") + r.name, [r](benchmark::State& s) { ping_pong(s, SOCK_STREAM, r.echo); });
    for (const route r : routes)
        add(std::string("udp_ping_pong/") + r.name, [r](benchmark::State& s) { ping_pong(s, SOCK_DGRAM, r.udp); });
    for (const route r : routes)
        add(std::string("tcp_connect_close/") + r.name, [r](benchmark::State& s) { tcp_connect_close(s, r.echo); });

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    net_ratios reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    std::fflush(stdout);
    if (const auto stats = forwarder.stats(); stats.loop_error != 0)
        std::fprintf(stderr, "net_bench: the forwarder's relay loop stopped: %s\n", std::strerror(stats.loop_error));
    return 0;
}
