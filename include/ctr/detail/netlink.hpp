#pragma once
// Routing netlink (rtnetlink): the message builder and the socket that
// net.hpp uses to create links and set addresses. Parent-side only: it
// allocates.

#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>
#include <ctr/detail/syscall.hpp>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::net::detail {

namespace sys = ctr::detail::sys;

constexpr std::size_t netlink_align(std::size_t n) noexcept { return (n + 3) & ~std::size_t{3}; }
// NLA_HDRLEN, as a size: the kernel's macro is an int built from ~3, which
// -Wsign-conversion reports wherever it meets a size_t.
constexpr std::size_t attribute_header_size = netlink_align(sizeof(nlattr));

// One request: an nlmsghdr, a family header (ifinfomsg, ifaddrmsg, ...)
// and attributes, nested where the kernel wants them nested.
class netlink_message {
public:
    netlink_message(std::uint16_t type, std::uint16_t flags) {
        buffer_.resize(netlink_align(sizeof(nlmsghdr)));
        header().nlmsg_type = type;
        header().nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST);
        sync_length();
    }

    template <class FamilyHeader>
    void add_header(const FamilyHeader& h) {
        append(&h, sizeof h);
    }
    template <class = void>
    void add_attribute(std::uint16_t type, const void* data, std::size_t size) {
        nlattr a{};
        a.nla_type = type;
        a.nla_len = static_cast<std::uint16_t>(attribute_header_size + size);
        append(&a, sizeof a);
        append(data, size);
    }
    template <class = void>
    void add_u32(std::uint16_t type, std::uint32_t value) { add_attribute(type, &value, sizeof value); }
    template <class = void>
    void add_string(std::uint16_t type, std::string_view text) {
        std::string with_nul(text);
        add_attribute(type, with_nul.c_str(), with_nul.size() + 1);
    }
    // Nested attributes: begin_nested returns a mark for end_nested, which
    // patches the length once the contents are known.
    template <class = void>
    std::size_t begin_nested(std::uint16_t type) {
        const std::size_t mark = buffer_.size();
        nlattr a{};
        a.nla_type = static_cast<std::uint16_t>(type | NLA_F_NESTED);
        append(&a, sizeof a);
        return mark;
    }
    template <class = void>
    void end_nested(std::size_t mark) {
        auto* a = reinterpret_cast<nlattr*>(buffer_.data() + mark);
        a->nla_len = static_cast<std::uint16_t>(buffer_.size() - mark);
    }

    template <class = void>
    nlmsghdr& header() noexcept { return *reinterpret_cast<nlmsghdr*>(buffer_.data()); }
    template <class = void>
    const char* data() const noexcept { return buffer_.data(); }
    template <class = void>
    std::size_t size() const noexcept { return buffer_.size(); }

private:
    template <class = void>
    void append(const void* data, std::size_t size) {
        const std::size_t at = buffer_.size();
        buffer_.resize(at + netlink_align(size));
        std::memcpy(buffer_.data() + at, data, size);
        sync_length();
    }
    template <class = void>
    void sync_length() noexcept { header().nlmsg_len = static_cast<std::uint32_t>(buffer_.size()); }

    // Kept in 4-byte units' alignment by construction; the vector's storage
    // is suitably aligned for nlmsghdr.
    std::vector<char> buffer_;
};

// Walks the attributes in [data, data + size): calls visit(type, payload, length).
template <class Visit>
void for_each_attribute(const char* data, std::size_t size, Visit&& visit) {
    while (size >= sizeof(nlattr)) {
        nlattr a;
        std::memcpy(&a, data, sizeof a);
        if (a.nla_len < sizeof(nlattr) || a.nla_len > size) return;
        visit(static_cast<std::uint16_t>(a.nla_type & NLA_TYPE_MASK), data + attribute_header_size,
              a.nla_len - attribute_header_size);
        const std::size_t step = netlink_align(a.nla_len);
        if (step >= size) return;
        data += step;
        size -= step;
    }
}

// A NETLINK_ROUTE socket in the network namespace of the thread that opened
// it. Requests wait for the kernel's acknowledgement; a refusal comes back as
// -errno plus the kernel's own explanation when it gives one (extended ack).
// nftables.hpp opens one on NETLINK_NETFILTER: the framing is the same.
class rtnetlink {
public:
    // Throws ctr::error(step::netlink) when the socket cannot be made.
    template <class = void>
    static rtnetlink open(int protocol = NETLINK_ROUTE, const char* protocol_name = "NETLINK_ROUTE") {
        const long fd = sys::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw error(step::netlink, static_cast<int>(-fd), protocol_name, "socket");
        rtnetlink out;
        out.fd_.reset(static_cast<int>(fd));
        sockaddr_nl local{};
        local.nl_family = AF_NETLINK;
        if (const long r = sys::bind(out.fd_.get(), &local, sizeof local); r < 0)
            throw error(step::netlink, static_cast<int>(-r), protocol_name, "bind");
        // Both are optional: older kernels just give bare errnos and whole
        // requests back in errors.
        const int on = 1;
        sys::setsockopt(out.fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
        sys::setsockopt(out.fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
        return out;
    }

    // Sends a request with NLM_F_ACK and waits for its answer: 0, or -errno
    // with last_message() holding the kernel's explanation (may be empty).
    template <class = void>
    long request(netlink_message& message) {
        message.header().nlmsg_flags |= NLM_F_ACK;
        long result = -EPROTO;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, [](const nlmsghdr&) {}, result);
        return r < 0 ? r : result;
    }

    // The same, calling visit for each answer before the acknowledgement
    // (a "get" that is not a dump).
    template <class = void>
    long request(netlink_message& message, const std::function<void(const nlmsghdr&)>& visit) {
        message.header().nlmsg_flags |= NLM_F_ACK;
        long result = -EPROTO;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, visit, result);
        return r < 0 ? r : result;
    }

    // Sends `messages` in one datagram, each with its own sequence number
    // (returned in `sequences`), and no waiting: see receive_queued.
    template <class = void>
    long send_together(std::vector<netlink_message>& messages, std::vector<std::uint32_t>& sequences) {
        std::vector<char> all;
        sequences.clear();
        for (auto& m : messages) {
            m.header().nlmsg_seq = ++sequence_;
            sequences.push_back(sequence_);
            all.insert(all.end(), m.data(), m.data() + m.size());
        }
        return send_to_kernel(all.data(), all.size());
    }

    // Reads the answers already queued on the socket, without waiting, and
    // calls visit(header, error) for each NLMSG_ERROR (error: 0 for an
    // acknowledgement, else -errno; last_message() then holds the kernel's
    // explanation of the first refusal). The kernel handles what a socket
    // sends to it within the send, so after send_together every answer is
    // queued. Returns 0, or -errno when reading failed.
    template <class Visit>
    long receive_queued(Visit&& visit) {
        std::vector<char> buffer(32768);
        for (;;) {
            long n;
            do n = sys::recvfrom(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT, nullptr, nullptr);
            while (n == -EINTR);
            if (n == -EAGAIN) return 0;
            if (n < 0) return n;
            std::size_t left = static_cast<std::size_t>(n);
            const char* at = buffer.data();
            while (left >= sizeof(nlmsghdr)) {
                nlmsghdr h;
                std::memcpy(&h, at, sizeof h);
                if (h.nlmsg_len < sizeof h || h.nlmsg_len > left) return -EPROTO;
                if (h.nlmsg_type == NLMSG_ERROR) {
                    const std::string before = last_message_;
                    long result = -EPROTO;
                    read_error(at, h, result);
                    if (result == 0 || !before.empty()) last_message_ = before;
                    visit(h, result);
                }
                const std::size_t step = netlink_align(h.nlmsg_len);
                if (step >= left) break;
                at += step;
                left -= step;
            }
        }
    }

    // Sends a dump request (NLM_F_DUMP) and calls visit for each answer.
    template <class = void>
    long dump(netlink_message& message, const std::function<void(const nlmsghdr&)>& visit) {
        message.header().nlmsg_flags |= NLM_F_DUMP;
        long result = 0;
        if (const long r = send(message); r < 0) return r;
        const long r = receive_until_done(message.header().nlmsg_seq, visit, result);
        return r < 0 ? r : result;
    }

    template <class = void>
    const std::string& last_message() const noexcept { return last_message_; }

private:
    template <class = void>
    long send(netlink_message& message) {
        message.header().nlmsg_seq = ++sequence_;
        return send_to_kernel(message.data(), message.size());
    }

    // One datagram to the kernel; a new exchange, so no message of the last.
    template <class = void>
    long send_to_kernel(const char* bytes, std::size_t size) {
        last_message_.clear();
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        long r;
        do r = sys::sendto(fd_.get(), bytes, size, 0, &kernel, sizeof kernel);
        while (r == -EINTR);
        return r < 0 ? r : 0;
    }

    // Reads answers to `sequence` until the ack (NLMSG_ERROR) or the end of
    // a dump (NLMSG_DONE). Returns -errno when reading failed; `result`
    // gets the kernel's verdict.
    template <class Visit>
    long receive_until_done(std::uint32_t sequence, Visit&& visit, long& result) {
        std::vector<char> buffer(32768);
        for (;;) {
            long n;
            do n = sys::recvfrom(fd_.get(), buffer.data(), buffer.size(), 0, nullptr, nullptr);
            while (n == -EINTR);
            if (n < 0) return n;
            std::size_t left = static_cast<std::size_t>(n);
            const char* at = buffer.data();
            while (left >= sizeof(nlmsghdr)) {
                nlmsghdr h;
                std::memcpy(&h, at, sizeof h);
                if (h.nlmsg_len < sizeof h || h.nlmsg_len > left) return -EPROTO;
                if (h.nlmsg_seq == sequence) {
                    // A dump that changed while it was read is incomplete.
                    if (h.nlmsg_flags & NLM_F_DUMP_INTR) result = -EINTR;
                    if (h.nlmsg_type == NLMSG_DONE) {
                        // The end of a dump may carry the dump's own error.
                        int done_error = 0;
                        if (h.nlmsg_len >= NLMSG_LENGTH(sizeof done_error))
                            std::memcpy(&done_error, at + NLMSG_HDRLEN, sizeof done_error);
                        if (done_error < 0) result = done_error;
                        return 0;
                    }
                    if (h.nlmsg_type == NLMSG_ERROR) {
                        read_error(at, h, result);
                        return 0;
                    }
                    visit(*reinterpret_cast<const nlmsghdr*>(at));
                }
                const std::size_t step = netlink_align(h.nlmsg_len);
                if (step >= left) break;
                at += step;
                left -= step;
            }
        }
    }

    template <class = void>
    void read_error(const char* at, const nlmsghdr& h, long& result) {
        nlmsgerr e;
        if (h.nlmsg_len < NLMSG_HDRLEN + sizeof e) {
            result = -EPROTO;
            return;
        }
        std::memcpy(&e, at + NLMSG_HDRLEN, sizeof e);
        result = e.error;
        if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return;
        // The TLVs follow the echoed request: only its header when capped.
        std::size_t offset = NLMSG_HDRLEN + sizeof e;
        if (!(h.nlmsg_flags & NLM_F_CAPPED)) offset += e.msg.nlmsg_len - sizeof(nlmsghdr);
        if (offset >= h.nlmsg_len) return;
        for_each_attribute(at + offset, h.nlmsg_len - offset, [&](std::uint16_t type, const char* p, std::size_t n) {
            if (type == NLMSGERR_ATTR_MSG) last_message_.assign(p, strnlen(p, n));
        });
    }

    unique_fd fd_;
    std::uint32_t sequence_ = 0;
    std::string last_message_;
};

}  // namespace ctr::net::detail
