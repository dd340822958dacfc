#pragma once
// ctr::net::port_forwarder: publishes ports of a sandbox on the caller's
// network namespace by relaying in user space, as docker-proxy and
// rootlesskit's builtin port driver do. It needs no privilege, no iptables
// and no route into the sandbox beyond the address it connects to.

#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/port_mapping.hpp>
#include <ctr/unique_fd.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ctr::net {

struct port_forward_options {
    // A UDP client's session (its socket towards the sandbox) ends after this
    // long without a datagram either way: UDP has no end of its own.
    std::chrono::milliseconds udp_idle_timeout{60'000};
    // Bytes held per TCP connection in each direction. A side is not read
    // while the buffer it fills is full, so a slow reader slows its writer
    // (through TCP's own flow control) instead of growing memory. The bytes
    // wait in a pipe (see port_relay's tcp_buffer), grown to this size where
    // it is above a pipe's default 64 KiB and the pipe-max-size sysctl allows.
    std::size_t tcp_buffer_size = 64 * 1024;
    int listen_backlog = 128;
};

// What the relay has done so far, for tests and diagnostics.
struct port_forward_stats {
    std::uint64_t tcp_connections = 0;       // accepted on a host port
    std::uint64_t tcp_connect_failures = 0;  // connections to the target that failed; their client was reset
    std::uint64_t tcp_open = 0;              // connections being relayed now
    std::uint64_t udp_sessions = 0;          // UDP sessions opened (one per client address while active)
    std::uint64_t udp_open = 0;              // UDP sessions open now
    std::uint64_t bytes_to_container = 0;
    std::uint64_t bytes_from_container = 0;
    // Directions of TCP connections relayed by copying through a buffer
    // instead of splice(2): no pipe to be had (out of fds), or the kernel
    // refused to splice those sockets. 0 in the common case.
    std::uint64_t tcp_copied_directions = 0;
    int loop_error = 0;                      // the errno the relay loop stopped on; 0 while it runs
};

}  // namespace ctr::net

namespace ctr::net::detail {

namespace sys = ctr::detail::sys;

// A bound (and for TCP listening) socket for the host side of `m`; throws
// ctr::error(step::publish_port) naming the host side and the call.
template <class = void>
inline unique_fd open_host_socket(const net::port_mapping& m, int backlog, std::uint16_t& bound_port) {
    unique_fd fd = bind_host_side(m, SOCK_NONBLOCK, bound_port);
    if (m.proto == net::protocol::tcp) {
        if (const long r = sys::listen(fd.get(), backlog); r < 0)
            throw error(step::publish_port, static_cast<int>(-r), m.host_side(), "listen");
    }
    return fd;
}

// A UDP client's address and port, IPv4 or IPv6, as a key: 16 address
// bytes (an IPv4 one in the first 4) and the port.
using udp_client_id = std::array<std::uint8_t, 18>;
struct udp_client_id_hash {
    std::size_t operator()(const udp_client_id& id) const noexcept {
        std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
        for (const std::uint8_t b : id) h = (h ^ b) * 1099511628211ULL;
        return static_cast<std::size_t>(h);
    }
};

// The relay: every socket of one port_forwarder and the epoll loop that
// moves their bytes. After start, only the relay thread touches it, except
// for the atomics (the stop flag and the counters) and the wake-up eventfd.
// A class template with one instantiation (port_relay), like the handles:
// its hash maps and its members are compiled only where a program publishes
// ports, not in every includer.
template <class>
class [[nodiscard]] basic_port_relay {
public:
    struct host_socket {
        net::port_mapping mapping;  // with the bound host port
        unique_fd fd;
        std::uint32_t watched = 0;  // the epoll events registered for it; 0: not registered
        // UDP: the session of each client, by address (see client_key).
        std::unordered_map<udp_client_id, std::uint64_t, udp_client_id_hash> udp_clients{};
    };

    template <class = void>
    basic_port_relay(std::vector<host_socket> hosts, const net::port_forward_options& options)
        : hosts_(std::move(hosts)),
          buffer_size_(options.tcp_buffer_size),
          udp_idle_timeout_(options.udp_idle_timeout),
          sweep_interval_(std::clamp<clock::duration>(options.udp_idle_timeout / 4, std::chrono::milliseconds(10),
                                                      std::chrono::seconds(1))) {}

    // Makes the epoll instance and the wake-up eventfd and registers the
    // host sockets: everything that can fail before the thread starts.
    template <class = void>
    void prepare(net::ipv4_address target) {
        target_ = target;
        const auto fail = [](long r, std::string_view call) {
            return error(step::publish_port, static_cast<int>(-r), {}, call);
        };
        const long ep = sys::epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) throw fail(ep, "epoll_create1");
        epoll_.reset(static_cast<int>(ep));
        // Non-blocking so that draining it never stalls the loop.
        const long ev = sys::eventfd2(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ev < 0) throw fail(ev, "eventfd2");
        wake_.reset(static_cast<int>(ev));
        std::uint32_t wake_watched = 0;
        if (const long r = watch(wake_.get(), token(kind::wake, 0), wake_watched, EPOLLIN); r < 0)
            throw fail(r, "epoll_ctl");
        for (std::size_t i = 0; i < hosts_.size(); ++i) {
            hosts_[i].watched = 0;  // a new epoll set: nothing is registered in it yet
            if (const long r = watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, EPOLLIN); r < 0)
                throw fail(r, "epoll_ctl");
            if (hosts_[i].mapping.proto == net::protocol::udp && !datagram_)
                datagram_ = std::make_unique_for_overwrite<char[]>(datagram_size);
        }
    }

    // The relay thread's body. Nothing escapes it: an exception leaving a
    // std::thread would terminate the whole process.
    template <class = void>
    void run() noexcept {
        try {
            loop();
        } catch (...) {
            loop_error_.store(ENOMEM, std::memory_order_relaxed);
        }
        // A loop that failed closes every connection and host socket, so that
        // clients see resets and refusals instead of a silent hang. The epoll
        // and eventfd stay: the owner may still be writing to the eventfd.
        if (loop_error_.load(std::memory_order_relaxed) != 0) drop_connections();
    }

    // From the owner's thread: ends run() soon. The eventfd wakes the loop at
    // once; should that write fail, the loop still sees the flag within its
    // longest wait (max_wait).
    template <class = void>
    void request_stop() noexcept {
        stop_.store(true, std::memory_order_release);
        const std::uint64_t one = 1;
        (void)sys::write(wake_.get(), &one, sizeof one);
    }

    // Closes every socket. Only once the thread has ended (or never started).
    template <class = void>
    void close_all() noexcept {
        drop_connections();
        wake_.reset();
        epoll_.reset();
        closed_ = true;
    }
    template <class = void>
    bool closed() const noexcept { return closed_; }

    template <class = void>
    int loop_error() const noexcept { return loop_error_.load(std::memory_order_relaxed); }

    template <class = void>
    net::port_forward_stats stats() const noexcept {
        constexpr auto relaxed = std::memory_order_relaxed;
        return {tcp_connections_.load(relaxed), tcp_connect_failures_.load(relaxed), tcp_open_.load(relaxed),
                udp_sessions_.load(relaxed),    udp_open_.load(relaxed),             bytes_to_.load(relaxed),
                bytes_from_.load(relaxed),      copied_.load(relaxed),               loop_error_.load(relaxed)};
    }

private:
    using clock = std::chrono::steady_clock;

    // What an epoll event is about, packed with an id into its 64-bit token.
    // Ids are never reused, so an event for a connection closed earlier in
    // the same batch finds nothing instead of another connection.
    enum class kind : std::uint64_t { wake, host, client, server, udp_session };
    static constexpr std::uint64_t token(kind k, std::uint64_t id) noexcept {
        return id << 3 | static_cast<std::uint64_t>(k);
    }

    static constexpr int batch = 64;                      // events per wait; accepts and datagrams per event
    static constexpr std::size_t datagram_size = 65536;   // more than the largest UDP payload over IPv4
    static constexpr auto max_wait = std::chrono::seconds(1);
    static constexpr auto accept_pause = std::chrono::milliseconds(100);
    static constexpr std::size_t default_pipe_size = 64 * 1024;  // pipe(7): 16 pages
    // SPLICE_F_MOVE is only a hint; SPLICE_F_NONBLOCK keeps the pipe's side
    // from blocking (the sockets are non-blocking themselves).
    static constexpr unsigned splice_flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

    // One direction of a TCP connection: bytes read from one side and not
    // yet written to the other. They wait in a pipe, moved in and out with
    // splice(2), so that they never cross into user space: the relay copies
    // nothing and the sockets' pages pass from one to the other. Where no
    // pipe can be had, or the kernel will not splice these sockets, they
    // wait in a buffer of ours instead, moved with recv and send.
    struct tcp_buffer {
        unique_fd pipe_read;   // spliced: the pipe's two ends
        unique_fd pipe_write;
        std::size_t held = 0;    // spliced: bytes in the pipe
        bool pipe_full = false;  // spliced: the pipe took nothing more with `held` below the limit (see pull)
        std::unique_ptr<char[]> bytes;  // copied: the buffer, and the part of it in use
        std::size_t begin = 0;
        std::size_t end = 0;
        bool eof = false;   // the side it is read from has sent its FIN
        bool shut = false;  // and that FIN was passed on: shutdown(SHUT_WR) of the other side
        bool spliced() const noexcept { return static_cast<bool>(pipe_read); }
        std::size_t size() const noexcept { return spliced() ? held : end - begin; }
    };
    struct tcp_link {
        unique_fd client;  // accepted on the host port
        unique_fd server;  // towards the target
        bool connecting = false;
        tcp_buffer up;    // client to server
        tcp_buffer down;  // server to client
        std::uint32_t client_watched = 0;
        std::uint32_t server_watched = 0;
    };
    struct udp_session {
        std::size_t host = 0;  // index into hosts_
        sockaddr_in6 client{};  // a sockaddr_in where the host side is IPv4 (sin_family says)
        unique_fd fd;  // connected to target:container_port
        std::uint32_t watched = 0;
        clock::time_point last_active{};
    };
    using link_iterator = typename std::unordered_map<std::uint64_t, tcp_link>::iterator;

    // Makes the epoll interest of `fd` `wanted` (level-triggered). An fd that
    // wants nothing is taken out rather than left with an empty mask: a
    // hung-up socket is reported (EPOLLHUP) on every wait whatever its mask.
    template <class = void>
    long watch(int fd, std::uint64_t tok, std::uint32_t& current, std::uint32_t wanted) noexcept {
        if (current == wanted) return 0;
        epoll_event event{};
        event.events = wanted;
        event.data.u64 = tok;
        const int op = wanted == 0 ? EPOLL_CTL_DEL : current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        const long r = sys::epoll_ctl(epoll_.get(), op, fd, &event);
        if (r >= 0) current = wanted;
        return r;
    }

    template <class = void>
    void loop() {
        epoll_event events[batch];
        while (!stop_.load(std::memory_order_acquire)) {
            const long n = sys::epoll_wait(epoll_.get(), events, batch, wait_ms());
            if (n == -EINTR) continue;
            if (n < 0) {
                loop_error_.store(static_cast<int>(-n), std::memory_order_relaxed);
                return;
            }
            now_ = clock::now();
            for (long i = 0; i < n; ++i) {
                try {
                    dispatch(events[i].data.u64, events[i].events);
                } catch (...) {
                    // Out of memory while opening one connection or session:
                    // it was not made (its sockets closed as the exception
                    // left), and the others go on.
                }
            }
            now_ = clock::now();
            if (!sessions_.empty() && now_ >= next_sweep_) expire_sessions();
            if (accept_paused_ && now_ >= accept_resume_) resume_accepting();
        }
    }

    template <class = void>
    int wait_ms() const noexcept {
        const auto now = clock::now();
        auto deadline = now + max_wait;
        if (!sessions_.empty()) deadline = std::min(deadline, next_sweep_);
        if (accept_paused_) deadline = std::min(deadline, accept_resume_);
        if (deadline <= now) return 0;
        return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    }

    template <class = void>
    void dispatch(std::uint64_t tok, std::uint32_t events) {
        const std::uint64_t id = tok >> 3;
        switch (static_cast<kind>(tok & 7)) {
            case kind::wake: {
                std::uint64_t count = 0;
                (void)sys::read(wake_.get(), &count, sizeof count);
                return;  // the loop looks at the stop flag next
            }
            case kind::host:
                if (hosts_[id].mapping.proto == net::protocol::tcp) accept_clients(id);
                else from_udp_client(id);
                return;
            case kind::client: on_link(id, false, events); return;
            case kind::server: on_link(id, true, events); return;
            case kind::udp_session: from_udp_target(id); return;
        }
    }

    // ---- TCP ----

    template <class = void>
    void accept_clients(std::size_t host) {
        for (int i = 0; i < batch; ++i) {
            const long fd = sys::accept4(hosts_[host].fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                open_link(host, unique_fd(static_cast<int>(fd)));
                continue;
            }
            switch (-fd) {
                case EAGAIN: return;
                // Errors of one connection that was aborted or refused on its
                // way in (accept(2) lists the network errors as such): the
                // next one may be fine.
                case EINTR: case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN: case ENOPROTOOPT:
                case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case ETIMEDOUT:
                    continue;
                default:
                    // Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
                    // an error we do not know: the listener would stay readable
                    // and spin the loop, so stop accepting for a moment. The
                    // connections wait in the backlog meanwhile.
                    pause_accepting();
                    return;
            }
        }
    }

    template <class = void>
    void pause_accepting() noexcept {
        for (std::size_t i = 0; i < hosts_.size(); ++i)
            if (hosts_[i].mapping.proto == net::protocol::tcp)
                (void)watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, 0);
        accept_paused_ = true;
        accept_resume_ = now_ + accept_pause;
    }
    template <class = void>
    void resume_accepting() noexcept {
        bool all = true;
        for (std::size_t i = 0; i < hosts_.size(); ++i)
            if (hosts_[i].mapping.proto == net::protocol::tcp && hosts_[i].fd)
                all = watch(hosts_[i].fd.get(), token(kind::host, i), hosts_[i].watched, EPOLLIN) >= 0 && all;
        accept_paused_ = !all;
        accept_resume_ = now_ + accept_pause;
    }

    // Sends a reset rather than a FIN when `fd` is closed: a client whose
    // target cannot be reached, or whose other side broke, learns that the
    // connection failed instead of reading a clean end of stream.
    template <class = void>
    static void reset_on_close(const unique_fd& fd) noexcept {
        if (!fd) return;
        const linger hard_close{1, 0};
        (void)sys::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close);
    }

    // The relay must not add Nagle's delay on top of the endpoints' own:
    // what it reads is written on at once.
    template <class = void>
    static void no_delay(int fd) noexcept {
        const int one = 1;
        (void)sys::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    template <class = void>
    void open_link(std::size_t host, unique_fd client) {
        tcp_connections_.fetch_add(1, std::memory_order_relaxed);
        tcp_link link;
        link.client = std::move(client);
        const auto refuse = [&] {
            tcp_connect_failures_.fetch_add(1, std::memory_order_relaxed);
            reset_on_close(link.client);
        };
        const long s = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) return refuse();
        link.server.reset(static_cast<int>(s));
        no_delay(link.client.get());
        no_delay(link.server.get());
        // Non-blocking: a target that is slow to answer must not stall every
        // other connection. Completion shows as writability, then SO_ERROR.
        const sockaddr_in target = to_sockaddr(target_, hosts_[host].mapping.container_port);
        const long r = sys::connect(link.server.get(), &target, sizeof target);
        if (r < 0 && r != -EINPROGRESS) return refuse();
        link.connecting = r < 0;
        // The pipes last, so that they take only fds the sockets left over.
        make_room(link.up);
        make_room(link.down);
        const auto it = links_.emplace(next_id_++, std::move(link)).first;
        tcp_open_.fetch_add(1, std::memory_order_relaxed);
        settle(it);
    }

    template <class = void>
    void on_link(std::uint64_t id, bool server_side, std::uint32_t events) noexcept {
        const auto it = links_.find(id);
        if (it == links_.end()) return;  // closed earlier in this batch
        tcp_link& l = it->second;
        if (server_side && l.connecting) {
            int failure = 0;
            unsigned length = sizeof failure;
            if (const long r = sys::getsockopt(l.server.get(), SOL_SOCKET, SO_ERROR, &failure, &length); r < 0)
                failure = static_cast<int>(-r);
            if (failure != 0) {
                tcp_connect_failures_.fetch_add(1, std::memory_order_relaxed);
                return abort_link(it);
            }
            l.connecting = false;
            events = EPOLLOUT;  // pass on what the client sent meanwhile
        }
        const int from = server_side ? l.server.get() : l.client.get();
        const int to = server_side ? l.client.get() : l.server.get();
        tcp_buffer& inbound = server_side ? l.down : l.up;    // read from this side
        tcp_buffer& outbound = server_side ? l.up : l.down;   // written to this side
        auto& in_count = server_side ? bytes_from_ : bytes_to_;
        auto& out_count = server_side ? bytes_to_ : bytes_from_;
        bool ok = true;
        // An error or hang-up is found by the read (or below, the write)
        // that it makes fail.
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ok = pull(from, inbound);
        if (ok && (events & EPOLLOUT)) ok = push(from, outbound, out_count);
        // What was just read goes on at once, saving a round through epoll.
        if (ok && !l.connecting) ok = push(to, inbound, in_count);
        if (!ok) return abort_link(it);
        settle(it);
    }

    // Gives one direction a pipe, or, when none can be had (out of fds, or
    // past the pipe-user-pages limits), a buffer: the connection is relayed
    // either way.
    template <class = void>
    void make_room(tcp_buffer& b) {
        int fds[2];
        if (sys::pipe2(fds, O_CLOEXEC | O_NONBLOCK) >= 0) {
            b.pipe_read.reset(fds[0]);
            b.pipe_write.reset(fds[1]);
            // Best effort: a pipe kept at its default size still relays,
            // only in more rounds.
            if (buffer_size_ > default_pipe_size)
                (void)sys::fcntl(fds[1], F_SETPIPE_SZ, static_cast<long>(std::min<std::size_t>(buffer_size_, 1u << 30)));
            return;
        }
        b.bytes = std::make_unique_for_overwrite<char[]>(buffer_size_);
        copied_.fetch_add(1, std::memory_order_relaxed);
    }

    // Turns a spliced direction into a copied one, moving what its pipe
    // holds (at most buffer_size_ bytes) into a new buffer. False when there
    // is no memory for the buffer or the pipe cannot be read.
    template <class = void>
    bool copy_instead(tcp_buffer& b) noexcept {
        b.bytes.reset(new (std::nothrow) char[buffer_size_]);
        if (!b.bytes) return false;
        b.begin = b.end = 0;
        while (b.end < b.held) {
            const long n = sys::read(b.pipe_read.get(), b.bytes.get() + b.end, b.held - b.end);
            if (n > 0) b.end += static_cast<std::size_t>(n);
            else if (n != -EINTR) return false;
        }
        b.held = 0;
        b.pipe_full = false;
        b.pipe_read.reset();
        b.pipe_write.reset();
        copied_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // Whether a failed splice means that splice cannot serve these files at
    // all (an old kernel, or a socket type that has no splice), so that
    // copying is the way on, rather than that the connection failed.
    static constexpr bool splice_unsupported(long r) noexcept { return r == -EINVAL || r == -ENOSYS; }

    // Reads from `fd` until it has nothing more, the buffer is full or the
    // side sends its FIN. False when the socket failed (a reset).
    template <class = void>
    bool pull(int fd, tcp_buffer& b) noexcept {
        while (b.spliced() && !b.eof && b.held < buffer_size_) {
            const long n = sys::splice(fd, nullptr, b.pipe_write.get(), nullptr, buffer_size_ - b.held, splice_flags);
            if (n > 0) {
                b.held += static_cast<std::size_t>(n);
            } else if (n == 0) {
                b.eof = true;
            } else if (n == -EAGAIN) {
                // The socket has nothing more, or the pipe is full: a pipe
                // counts pages, not bytes, and small segments can fill its
                // 16 slots well before `held` reaches the limit. An empty
                // pipe always has room, so with bytes held it is taken as
                // full, and the side is read again once push has drained
                // some (should the socket merely have been empty, that costs
                // one more wake-up). Watching a readable socket for a pipe
                // that cannot take its bytes would spin the loop.
                b.pipe_full = b.held > 0;
                return true;
            } else if (splice_unsupported(n)) {
                if (!copy_instead(b)) return false;
            } else if (n != -EINTR) {
                return false;
            }
        }
        if (b.spliced()) return true;
        if (b.end == buffer_size_ && b.begin > 0) {
            std::memmove(b.bytes.get(), b.bytes.get() + b.begin, b.size());
            b.end -= b.begin;
            b.begin = 0;
        }
        while (!b.eof && b.end < buffer_size_) {
            const long n = sys::recvfrom(fd, b.bytes.get() + b.end, buffer_size_ - b.end, 0, nullptr, nullptr);
            if (n > 0) b.end += static_cast<std::size_t>(n);
            else if (n == 0) b.eof = true;
            else if (n != -EINTR) return n == -EAGAIN;
        }
        return true;
    }

    // Writes what `b` holds to `fd` until the socket takes no more, then
    // passes a FIN on (half-close: the other direction keeps flowing). False
    // when the socket failed (the peer is gone).
    template <class = void>
    bool push(int fd, tcp_buffer& b, std::atomic<std::uint64_t>& count) noexcept {
        while (b.spliced() && b.held > 0) {
            // splice has no MSG_NOSIGNAL: a peer that has gone raises
            // SIGPIPE, which the relay thread blocks (port_forwarder::start),
            // so it stays pending on that thread and ends with it, while the
            // splice fails with EPIPE.
            const long n = sys::splice(b.pipe_read.get(), nullptr, fd, nullptr, b.held, splice_flags);
            if (n > 0) {
                b.held -= static_cast<std::size_t>(n);
                b.pipe_full = false;
                count.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
            } else if (n == -EAGAIN || n == 0) {
                return true;
            } else if (splice_unsupported(n)) {
                if (!copy_instead(b)) return false;
            } else if (n != -EINTR) {
                return false;
            }
        }
        while (!b.spliced() && b.size() > 0) {
            // MSG_NOSIGNAL: writing to a peer that has gone must not raise
            // SIGPIPE, whose default action would end the whole process.
            const long n = sys::sendto(fd, b.bytes.get() + b.begin, b.size(), MSG_NOSIGNAL, nullptr, 0);
            if (n > 0) {
                b.begin += static_cast<std::size_t>(n);
                count.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
            } else if (n == -EAGAIN || n == 0) {
                return true;
            } else if (n != -EINTR) {
                return false;
            }
        }
        if (!b.spliced()) b.begin = b.end = 0;
        if (b.eof && !b.shut) {
            if (sys::shutdown(fd, SHUT_WR) < 0) return false;
            b.shut = true;
        }
        return true;
    }

    // After every event of a link: closes it when both directions have ended,
    // else asks epoll for exactly what can make progress. A side is read only
    // while its buffer has room, and watched for writing only while there is
    // something to write to it.
    template <class = void>
    void settle(link_iterator it) noexcept {
        tcp_link& l = it->second;
        if (l.up.shut && l.down.shut) return close_link(it);
        static constexpr std::uint32_t in = EPOLLIN, out = EPOLLOUT, none = 0;
        const auto readable = [this](const tcp_buffer& b) {
            return !b.eof && !b.pipe_full && b.size() < buffer_size_ ? in : none;
        };
        const auto writable = [](const tcp_buffer& b) { return b.size() > 0 ? out : none; };
        const std::uint32_t client_wants = readable(l.up) | writable(l.down);
        const std::uint32_t server_wants = l.connecting ? out : readable(l.down) | writable(l.up);
        if (watch(l.client.get(), token(kind::client, it->first), l.client_watched, client_wants) < 0 ||
            watch(l.server.get(), token(kind::server, it->first), l.server_watched, server_wants) < 0)
            abort_link(it);
    }

    template <class = void>
    void abort_link(link_iterator it) noexcept {
        reset_on_close(it->second.client);
        reset_on_close(it->second.server);
        close_link(it);
    }
    // Closing the fds also takes them out of the epoll set.
    template <class = void>
    void close_link(link_iterator it) noexcept {
        links_.erase(it);
        tcp_open_.fetch_sub(1, std::memory_order_relaxed);
    }

    // ---- UDP ----

    template <class = void>
    static udp_client_id client_key(const sockaddr_in6& a) noexcept {
        udp_client_id id{};
        if (a.sin6_family == AF_INET6) {
            std::memcpy(id.data(), &a.sin6_addr, 16);
        } else {
            sockaddr_in v4;
            std::memcpy(&v4, &a, sizeof v4);
            std::memcpy(id.data(), &v4.sin_addr, 4);
        }
        std::memcpy(id.data() + 16, &a.sin6_port, 2);  // sin_port lies at the same offset
        return id;
    }

    template <class = void>
    void from_udp_client(std::size_t host) {
        for (int i = 0; i < batch; ++i) {
            sockaddr_in6 from{};
            unsigned length = sizeof from;
            const long n = sys::recvfrom(hosts_[host].fd.get(), datagram_.get(), datagram_size, 0, &from, &length);
            if (n == -EINTR) continue;
            if (n < 0) return;  // EAGAIN: drained
            udp_session* s = session_for(host, from);
            if (!s) continue;  // no socket to be had for it now: dropped, as UDP may
            long sent = send_datagram(s->fd.get(), static_cast<std::size_t>(n));
            // An ICMP port-unreachable that answered an earlier datagram is
            // reported by the next send, which it fails; the datagram is not
            // lost for it when the target has started listening since.
            if (sent == -ECONNREFUSED) sent = send_datagram(s->fd.get(), static_cast<std::size_t>(n));
            if (sent >= 0) {
                bytes_to_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
                s->last_active = now_;
            }
        }
    }

    template <class = void>
    long send_datagram(int fd, std::size_t size, const sockaddr_in6* to = nullptr) const noexcept {
        // MSG_DONTWAIT: a full send buffer drops the datagram rather than
        // stalling the loop.
        const unsigned length = !to ? 0u : to->sin6_family == AF_INET6 ? unsigned{sizeof(sockaddr_in6)}
                                                                      : unsigned{sizeof(sockaddr_in)};
        return sys::sendto(fd, datagram_.get(), size, MSG_NOSIGNAL | MSG_DONTWAIT, to, length);
    }

    // The session of a client address, opened on its first datagram: a
    // socket connected to the target, so that the target's replies can be
    // told apart per client and sent back from the host port.
    template <class = void>
    udp_session* session_for(std::size_t host, const sockaddr_in6& client) {
        auto& clients = hosts_[host].udp_clients;
        const udp_client_id key = client_key(client);
        if (const auto found = clients.find(key); found != clients.end()) return &sessions_.at(found->second);

        const long s = sys::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) return nullptr;
        udp_session session{host, client, unique_fd(static_cast<int>(s)), 0, now_};
        const sockaddr_in target = to_sockaddr(target_, hosts_[host].mapping.container_port);
        if (sys::connect(session.fd.get(), &target, sizeof target) < 0) return nullptr;
        const std::uint64_t id = next_id_++;
        if (watch(session.fd.get(), token(kind::udp_session, id), session.watched, EPOLLIN) < 0) return nullptr;
        if (sessions_.empty()) next_sweep_ = now_ + sweep_interval_;
        const auto it = sessions_.emplace(id, std::move(session)).first;
        try {
            clients.emplace(key, id);
        } catch (...) {
            sessions_.erase(it);
            throw;
        }
        udp_sessions_.fetch_add(1, std::memory_order_relaxed);
        udp_open_.fetch_add(1, std::memory_order_relaxed);
        return &it->second;
    }

    template <class = void>
    void from_udp_target(std::uint64_t id) noexcept {
        const auto it = sessions_.find(id);
        if (it == sessions_.end()) return;
        udp_session& s = it->second;
        for (int i = 0; i < batch; ++i) {
            const long n = sys::recvfrom(s.fd.get(), datagram_.get(), datagram_size, 0, nullptr, nullptr);
            // ECONNREFUSED: an ICMP error from the target, which has nothing
            // for the client; it finds out by its own timeout, as with any
            // datagram lost.
            if (n == -EINTR || n == -ECONNREFUSED) continue;
            if (n < 0) return;
            // Sent from the host socket, so the client sees the reply come
            // from the address and port it sent to.
            if (send_datagram(hosts_[s.host].fd.get(), static_cast<std::size_t>(n), &s.client) >= 0) {
                bytes_from_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
                s.last_active = now_;
            }
        }
    }

    template <class = void>
    void expire_sessions() noexcept {
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            if (now_ - it->second.last_active < udp_idle_timeout_) {
                ++it;
                continue;
            }
            hosts_[it->second.host].udp_clients.erase(client_key(it->second.client));
            it = sessions_.erase(it);
            udp_open_.fetch_sub(1, std::memory_order_relaxed);
        }
        next_sweep_ = now_ + sweep_interval_;
    }

    template <class = void>
    void drop_connections() noexcept {
        links_.clear();
        sessions_.clear();
        tcp_open_.store(0, std::memory_order_relaxed);
        udp_open_.store(0, std::memory_order_relaxed);
        for (auto& h : hosts_) {
            h.udp_clients.clear();
            h.fd.reset();
            h.watched = 0;
        }
    }

    std::vector<host_socket> hosts_;
    std::size_t buffer_size_;
    clock::duration udp_idle_timeout_;
    clock::duration sweep_interval_;
    net::ipv4_address target_{};
    unique_fd epoll_;
    unique_fd wake_;
    std::unique_ptr<char[]> datagram_;
    std::unordered_map<std::uint64_t, tcp_link> links_;
    std::unordered_map<std::uint64_t, udp_session> sessions_;
    std::uint64_t next_id_ = 0;
    clock::time_point now_ = clock::now();
    clock::time_point next_sweep_{};
    clock::time_point accept_resume_{};
    bool accept_paused_ = false;
    bool closed_ = false;

    std::atomic<bool> stop_{false};
    std::atomic<int> loop_error_{0};
    std::atomic<std::uint64_t> tcp_connections_{0};
    std::atomic<std::uint64_t> tcp_connect_failures_{0};
    std::atomic<std::uint64_t> tcp_open_{0};
    std::atomic<std::uint64_t> udp_sessions_{0};
    std::atomic<std::uint64_t> udp_open_{0};
    std::atomic<std::uint64_t> bytes_to_{0};
    std::atomic<std::uint64_t> bytes_from_{0};
    std::atomic<std::uint64_t> copied_{0};
};
using port_relay = basic_port_relay<void>;

}  // namespace ctr::net::detail

namespace ctr::net {

// Publishes ports: listens on host ports in the caller's network namespace
// and relays each TCP connection and UDP client to a target address (the
// sandbox's) on one thread of its own. Move-only; the destructor stops the
// thread and closes every socket.
template <class>
class [[nodiscard]] basic_port_forwarder {
public:
    // Binds (and for TCP listens on) every mapping now, so that a busy port
    // fails before anything is started: ctr::error(step::publish_port,
    // EADDRINUSE, "0.0.0.0:8080/tcp"). Nothing is left open on failure. A
    // mapping on 0.0.0.0 with also_ipv6 (parse's "8080:80") listens on
    // [::] too, on the same port, where the kernel has IPv6; mappings()
    // lists it once.
    template <class = void>
    explicit basic_port_forwarder(std::vector<port_mapping> mappings, const port_forward_options& options = {}) {
        if (options.tcp_buffer_size == 0)
            throw error(step::prepare, EINVAL, "tcp_buffer_size", "a connection needs room for at least one byte");
        if (options.udp_idle_timeout <= std::chrono::milliseconds::zero())
            throw error(step::prepare, EINVAL, "udp_idle_timeout", "must be positive");
        for (const auto& m : mappings)
            if (m.container_port == 0) throw error(step::prepare, EINVAL, m.to_string(), "the container port is 0");
        std::vector<detail::port_relay::host_socket> hosts;
        hosts.reserve(mappings.size());
        for (auto& m : mappings) {
            std::uint16_t bound = 0;
            unique_fd fd = detail::open_host_socket(m, options.listen_backlog, bound);
            m.host_port = bound;
            hosts.push_back({m, std::move(fd)});
            // Docker's -p without an address: [::] too, on the same port,
            // where the kernel has IPv6 (an explicit 0.0.0.0 is IPv4 alone).
            if (m.also_ipv6 && !m.host_address.is_ipv6() && m.host_address.is_unspecified()) {
                port_mapping v6 = m;
                v6.host_address = ipv6_address{};
                try {
                    unique_fd fd6 = detail::open_host_socket(v6, options.listen_backlog, bound);
                    hosts.push_back({v6, std::move(fd6)});
                } catch (const error& e) {
                    if (e.code().value() != EAFNOSUPPORT && e.code().value() != EADDRNOTAVAIL) throw;
                }
            }
        }
        relay_ = std::make_unique<detail::port_relay>(std::move(hosts), options);
        mappings_ = std::move(mappings);
    }

    basic_port_forwarder(basic_port_forwarder&&) noexcept = default;
    basic_port_forwarder& operator=(basic_port_forwarder&& other) noexcept {
        if (this != &other) {
            stop();
            mappings_ = std::move(other.mappings_);
            relay_ = std::move(other.relay_);
            thread_ = std::move(other.thread_);
            started_ = other.started_;
        }
        return *this;
    }
    basic_port_forwarder(const basic_port_forwarder&) = delete;
    basic_port_forwarder& operator=(const basic_port_forwarder&) = delete;

    // Stops the relay thread and closes every socket; noexcept and bounded:
    // the loop wakes on an eventfd, or within a second should that fail.
    ~basic_port_forwarder() { stop(); }

    // Starts relaying to `target` (the sandbox's address): each TCP
    // connection accepted on a host port gets a connection of its own to
    // target:container_port; each UDP client address gets a session.
    // A second call is an error (step::prepare, EALREADY).
    template <class = void>
    void start(ipv4_address target) {
        if (!relay_ || relay_->closed())
            throw error(step::prepare, EBADF, {}, "the port forwarder is closed or was moved from");
        if (started_) throw error(step::prepare, EALREADY, {}, "the port forwarder was started already");
        relay_->prepare(target);

        // The relay thread takes no signals: the application's handlers, and
        // its signalfd or sigwait, expect them on its own threads. It gets
        // its mask from this thread at creation, so block here for the
        // moment. glibc's internal signals 32 (cancellation) and 33 (setxid)
        // stay open: a set*id() call elsewhere in the process signals every
        // thread and waits for each.
        const unsigned long all_but_glibc = ~((1UL << (32 - 1)) | (1UL << (33 - 1)));
        unsigned long previous = 0;
        if (const long r = ctr::detail::sys::rt_sigprocmask(SIG_SETMASK, &all_but_glibc, &previous); r < 0)
            throw error(step::publish_port, static_cast<int>(-r), {}, "block signals for the relay thread");
        int failure = 0;
        try {
            thread_ = std::thread([relay = relay_.get()] { relay->run(); });
        } catch (const std::system_error& e) {
            failure = e.code().value();
        }
        // Straight to the kernel, as in clone.hpp: restoring a mask the
        // kernel just gave us cannot fail, and an injected fault is not for it.
        ctr::detail::raw::call(SYS_rt_sigprocmask, SIG_SETMASK, &previous, nullptr,
                               ctr::detail::sys::kernel_sigset_size);
        if (failure != 0) throw error(step::publish_port, failure, {}, "start the relay thread");
        started_ = true;
    }

    // The host port of mapping `index`: the one asked for, or the one the
    // kernel picked for host_port 0. std::out_of_range past the end.
    template <class = void>
    std::uint16_t host_port(std::size_t index) const { return mappings_.at(index).host_port; }
    // The mappings with their bound host ports.
    template <class = void>
    const std::vector<port_mapping>& mappings() const noexcept { return mappings_; }

    template <class = void>
    port_forward_stats stats() const noexcept { return relay_ ? relay_->stats() : port_forward_stats{}; }

    // What the destructor does, reporting what it would swallow: a relay
    // loop that stopped on an error (ctr::error(step::publish_port)), after
    // which nothing was being relayed.
    template <class = void>
    void close() {
        stop();
        if (!relay_ || relay_->closed()) return;
        const int failure = relay_->loop_error();
        relay_->close_all();
        if (failure != 0) throw error(step::publish_port, failure, {}, "the relay loop stopped");
    }

private:
    template <class = void>
    void stop() noexcept {
        if (thread_.joinable()) {
            relay_->request_stop();
            thread_.join();
        }
    }

    std::vector<port_mapping> mappings_;
    // On the heap so that the thread's pointer survives moves of the forwarder.
    std::unique_ptr<detail::port_relay> relay_;
    std::thread thread_;
    bool started_ = false;
};
using port_forwarder = basic_port_forwarder<void>;

}  // namespace ctr::net
