#pragma once
// The IPv6 half of a sandbox's interface, configured from inside its network
// namespace. IPv4 gets by with ioctls (child_program.hpp,
// apply_interface_setup); IPv6 addresses need netlink to carry
// IFA_F_NODAD, so that they are usable at once rather than "tentative" for
// the second that duplicate address detection takes. The requests are built
// on the stack, sent with raw syscalls and acknowledged one by one: no
// allocation, so this runs in the child between clone and exec as well as in
// the parent (net::configure_ipv6).

#include <ctr/detail/child_code.hpp>
#include <ctr/detail/child_program.hpp>
#include <ctr/detail/syscall.hpp>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace ctr::detail {

// Plain data, sent through the sync pipe after interface_setup.
struct ipv6_setup {
    char name[IFNAMSIZ] = {};
    std::uint8_t present = 0;  // 0: no IPv6 for this interface (the parent found none): nothing to do
    std::uint8_t prefix_length = 0;
    in6_addr address{};
    in6_addr gateway{};  // all zero: no default route
};

// Which part of apply_ipv6_setup failed (its *failed_part).
enum ipv6_setup_part : int {
    ipv6_part_socket = 0,
    ipv6_part_index = 1,
    ipv6_part_address = 2,
    ipv6_part_route = 3,
};

// NLMSG_HDRLEN and NLA_HDRLEN as sizes (the kernel's macros are ints).
inline constexpr std::size_t child_netlink_header_size = (sizeof(nlmsghdr) + 3) & ~std::size_t{3};
inline constexpr std::size_t child_attribute_header_size = (sizeof(nlattr) + 3) & ~std::size_t{3};

// One rtnetlink request of up to 128 bytes: the header, the family header,
// attributes. Built in place on the caller's stack.
struct child_netlink_request {
    alignas(nlmsghdr) char bytes[128] = {};
    std::size_t size = 0;

    CTR_CHILD_CODE void start(std::uint16_t type, std::uint16_t flags) noexcept {
        size = child_netlink_header_size;
        auto* h = reinterpret_cast<nlmsghdr*>(bytes);
        h->nlmsg_type = type;
        h->nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
        h->nlmsg_seq = 1;
        h->nlmsg_len = static_cast<std::uint32_t>(size);
    }
    CTR_CHILD_CODE void append(const void* data, std::size_t length) noexcept {
        __builtin_memcpy(bytes + size, data, length);
        size += (length + 3) & ~std::size_t{3};
        reinterpret_cast<nlmsghdr*>(bytes)->nlmsg_len = static_cast<std::uint32_t>(size);
    }
    CTR_CHILD_CODE void attribute(std::uint16_t type, const void* data, std::size_t length) noexcept {
        nlattr a{};
        a.nla_type = type;
        a.nla_len = static_cast<std::uint16_t>(child_attribute_header_size + length);
        __builtin_memcpy(bytes + size, &a, sizeof a);
        size += child_attribute_header_size;
        append(data, length);
    }
};

// Sends `request` on netlink socket `fd` and waits for its acknowledgement:
// 0 or the kernel's -errno. Async-signal-safe.
CTR_CHILD_CODE inline long child_netlink_exchange(int fd, const child_netlink_request& request) noexcept {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    long r;
    do r = sys::sendto(fd, request.bytes, request.size, 0, &kernel, sizeof kernel);
    while (r == -EINTR);
    if (r < 0) return r;
    alignas(nlmsghdr) char answer[512];
    for (;;) {
        do r = sys::recvfrom(fd, answer, sizeof answer, 0, nullptr, nullptr);
        while (r == -EINTR);
        if (r < 0) return r;
        if (static_cast<std::size_t>(r) < child_netlink_header_size + sizeof(nlmsgerr)) return -EPROTO;
        const auto* h = reinterpret_cast<const nlmsghdr*>(answer);
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        const auto* e = reinterpret_cast<const nlmsgerr*>(answer + child_netlink_header_size);
        return e->error;
    }
}

// Adds the address (IFA_F_NODAD) and the default route through the gateway
// to the interface, which must exist (and, for the route, be up: the
// address's prefix route makes the gateway reachable). *failed_part says
// which part failed. Async-signal-safe.
CTR_CHILD_CODE inline long apply_ipv6_setup(const ipv6_setup& setup, int* failed_part) noexcept {
    *failed_part = ipv6_part_socket;
    if (!setup.present) return 0;
    long r = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (r < 0) return r;
    ifreq request{};
    for (std::size_t i = 0; i + 1 < IFNAMSIZ && setup.name[i]; ++i) request.ifr_name[i] = setup.name[i];
    *failed_part = ipv6_part_index;
    const long index_result = sys::ioctl(static_cast<int>(r), SIOCGIFINDEX, reinterpret_cast<long>(&request));
    sys::close(static_cast<int>(r));
    if (index_result < 0) return index_result;
    const int index = request.ifr_ifindex;

    *failed_part = ipv6_part_socket;
    r = sys::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (r < 0) return r;
    const int fd = static_cast<int>(r);

    *failed_part = ipv6_part_address;
    child_netlink_request m;
    m.start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg a{};
    a.ifa_family = AF_INET6;
    a.ifa_prefixlen = setup.prefix_length;
    a.ifa_flags = IFA_F_NODAD;
    a.ifa_scope = RT_SCOPE_UNIVERSE;
    a.ifa_index = static_cast<unsigned>(index);
    m.append(&a, sizeof a);
    m.attribute(IFA_LOCAL, &setup.address, sizeof setup.address);
    m.attribute(IFA_ADDRESS, &setup.address, sizeof setup.address);
    const std::uint32_t flags = IFA_F_NODAD;  // IFA_FLAGS: the 32-bit field that newer flags need
    m.attribute(IFA_FLAGS, &flags, sizeof flags);
    r = child_netlink_exchange(fd, m);

    bool gateway = false;
    for (std::size_t i = 0; i < sizeof setup.gateway; ++i)
        gateway = gateway || reinterpret_cast<const unsigned char*>(&setup.gateway)[i] != 0;
    if (r >= 0 && gateway) {
        *failed_part = ipv6_part_route;
        m.start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        rtmsg route{};
        route.rtm_family = AF_INET6;
        route.rtm_table = RT_TABLE_MAIN;
        route.rtm_protocol = RTPROT_STATIC;
        route.rtm_scope = RT_SCOPE_UNIVERSE;
        route.rtm_type = RTN_UNICAST;
        m.append(&route, sizeof route);
        m.attribute(RTA_GATEWAY, &setup.gateway, sizeof setup.gateway);
        const std::uint32_t oif = static_cast<std::uint32_t>(index);
        m.attribute(RTA_OIF, &oif, sizeof oif);
        r = child_netlink_exchange(fd, m);
    }
    sys::close(fd);
    return r < 0 ? r : 0;
}

// Reads the ipv6_setup the parent wrote after the interface_setup and
// applies it. op.a = the sync fd, op.data2 = int* failure_detail.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_configure_ipv6(const child_op& op) noexcept {
    ipv6_setup setup;
    std::size_t got = 0;
    while (got < sizeof setup) {
        const long n = sys::read(static_cast<int>(op.a), reinterpret_cast<char*>(&setup) + got, sizeof setup - got);
        if (n == -EINTR) continue;
        if (n <= 0) return n < 0 ? n : -EPIPE;
        got += static_cast<std::size_t>(n);
    }
    return apply_ipv6_setup(setup, static_cast<int*>(const_cast<void*>(op.data2)));
}

}  // namespace ctr::detail
