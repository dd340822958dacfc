#pragma once
// ctr::net: a sandbox's network. A veth pair joins the caller's network
// namespace (the host side) to the sandbox's new one; each end gets an
// address from a /30, and the sandbox a default route through the host end.
// Published ports (port_forward.hpp) then reach services inside.
//
// spawn does all of it with options::network = net::veth{}; the pieces are
// public for callers that hold namespaces themselves.

#include <ctr/detail/child_program.hpp>
#include <ctr/detail/interface_ipv6.hpp>
#include <ctr/detail/netlink.hpp>
#include <ctr/detail/veth_options.hpp>
#include <ctr/error.hpp>
#include <ctr/ip_address.hpp>
#include <ctr/unique_fd.hpp>

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ctr::net {

// The network namespace the other end goes into: an open namespace file, or
// the namespace of a process (a child the caller has not reaped, so the pid
// cannot name anyone else).
struct peer_namespace {
    int netns_fd = -1;
    pid_t pid = 0;
    template <class = void>
    static peer_namespace from_fd(int fd) noexcept { return {fd, 0}; }
    template <class = void>
    static peer_namespace of_process(pid_t pid) noexcept { return {-1, pid}; }
};

namespace detail {

template <class = void>
inline bool valid_interface_name(const std::string& name) noexcept {
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
    for (const char c : name)
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
    return true;
}

template <class = void>
inline void check_interface_name(const std::string& name) {
    if (!valid_interface_name(name))
        throw error(step::prepare, EINVAL, name,
                    "an interface name is 1 to 15 characters without '/', ':' or spaces");
}

// The index of `name` in the current network namespace, 0 when there is
// none, -errno when asking failed.
template <class = void>
inline long interface_index(const std::string& name) noexcept {
    const long fd = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    ifreq request{};
    name.copy(request.ifr_name, IFNAMSIZ - 1);
    const long r = sys::ioctl(static_cast<int>(fd), SIOCGIFINDEX, reinterpret_cast<long>(&request));
    sys::close(static_cast<int>(fd));
    if (r == -ENODEV) return 0;
    return r < 0 ? r : request.ifr_ifindex;
}

template <class = void>
inline ctr::detail::interface_setup make_setup(const std::string& name, const ipv4_interface& address,
                                               std::optional<ipv4_address> gateway, unsigned mtu) {
    ctr::detail::interface_setup setup;
    name.copy(setup.name, IFNAMSIZ - 1);
    setup.address = address.address.to_in_addr();
    setup.netmask = address.netmask().to_in_addr();
    if (gateway) setup.gateway = gateway->to_in_addr();
    setup.mtu = mtu;
    return setup;
}

// What apply_interface_setup's failed_part numbers mean.
template <class = void>
inline std::string interface_setup_failure(int failed_part) {
    switch (failed_part) {
        case 0: return "opening a socket";
        case 1: return "setting the address";
        case 2: return "setting the netmask";
        case 3: return "setting the MTU";
        case 4: return "bringing it up";
        default: return "adding the default route";
    }
}

// The IPv4 networks in use in the current namespace: interface addresses and
// routes, so that a pool slot never shadows either.
template <class = void>
inline std::vector<ipv4_interface> networks_in_use(rtnetlink& netlink);

// The same, asked again while a dump comes back interrupted (the tables
// changed while the kernel wrote it).
template <class = void>
inline std::vector<ipv4_interface> networks_in_use_consistent(rtnetlink& netlink) {
    for (int attempt = 0;; ++attempt) {
        try {
            return networks_in_use(netlink);
        } catch (const error& e) {
            if (e.code().value() != EINTR || attempt == 10) throw;
        }
    }
}

template <class>
inline std::vector<ipv4_interface> networks_in_use(rtnetlink& netlink) {
    std::vector<ipv4_interface> used;
    netlink_message addresses(RTM_GETADDR, 0);
    ifaddrmsg address_header{};
    address_header.ifa_family = AF_INET;
    addresses.add_header(address_header);
    long r = netlink.dump(addresses, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWADDR || h.nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
        const auto* a = static_cast<const ifaddrmsg*>(NLMSG_DATA(&h));
        const char* attributes = reinterpret_cast<const char*>(a) + NLMSG_ALIGN(sizeof *a);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *a)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if ((type == IFA_LOCAL || type == IFA_ADDRESS) && n == 4) {
                                   ipv4_interface in{{}, a->ifa_prefixlen};
                                   std::memcpy(in.address.bytes.data(), p, 4);
                                   used.push_back(in);
                               }
                           });
    });
    if (r < 0) throw error(step::netlink, static_cast<int>(-r), "RTM_GETADDR", netlink.last_message());

    netlink_message routes(RTM_GETROUTE, 0);
    rtmsg route_header{};
    route_header.rtm_family = AF_INET;
    routes.add_header(route_header);
    r = netlink.dump(routes, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != RTM_NEWROUTE || h.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
        const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(&h));
        if (m->rtm_dst_len == 0) return;  // a default route overlaps everything and shadows nothing
        const char* attributes = reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof *m);
        for_each_attribute(attributes, h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof *m)),
                           [&](std::uint16_t type, const char* p, std::size_t n) {
                               if (type == RTA_DST && n == 4) {
                                   ipv4_interface in{{}, m->rtm_dst_len};
                                   std::memcpy(in.address.bytes.data(), p, 4);
                                   used.push_back(in);
                               }
                           });
    });
    if (r < 0) throw error(step::netlink, static_cast<int>(-r), "RTM_GETROUTE", netlink.last_message());
    return used;
}

template <class = void>
inline bool overlaps(const ipv4_interface& a, const ipv4_interface& b) noexcept {
    const std::uint8_t shorter = a.prefix_length < b.prefix_length ? a.prefix_length : b.prefix_length;
    const ipv4_interface wide{a.address, shorter};
    return wide.contains(b.address);
}

// RTM_NEWLINK for a veth pair: the host end here, the peer in `peer`.
template <class = void>
inline long request_veth(rtnetlink& netlink, const std::string& host_name, const std::string& peer_name,
                         peer_namespace peer, unsigned mtu) {
    netlink_message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg link_header{};
    link_header.ifi_family = AF_UNSPEC;
    m.add_header(link_header);
    m.add_string(IFLA_IFNAME, host_name);
    if (mtu != 0) m.add_u32(IFLA_MTU, mtu);
    const auto info = m.begin_nested(IFLA_LINKINFO);
    m.add_string(IFLA_INFO_KIND, "veth");
    const auto data = m.begin_nested(IFLA_INFO_DATA);
    const auto peer_info = m.begin_nested(VETH_INFO_PEER);
    m.add_header(link_header);  // the peer's own ifinfomsg comes first in VETH_INFO_PEER
    m.add_string(IFLA_IFNAME, peer_name);
    if (mtu != 0) m.add_u32(IFLA_MTU, mtu);
    if (peer.netns_fd >= 0) m.add_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer.netns_fd));
    else m.add_u32(IFLA_NET_NS_PID, static_cast<std::uint32_t>(peer.pid));
    m.end_nested(peer_info);
    m.end_nested(data);
    m.end_nested(info);
    return netlink.request(m);
}

// RTM_DELLINK by index, or by name when the index is 0.
template <class = void>
inline long delete_link(rtnetlink& netlink, int index, const std::string& name) {
    netlink_message m(RTM_DELLINK, 0);
    ifinfomsg h{};
    h.ifi_family = AF_UNSPEC;
    h.ifi_index = index;
    m.add_header(h);
    if (index == 0) m.add_string(IFLA_IFNAME, name);
    return netlink.request(m);
}

// Best effort, for error paths: a failed launch leaves no link behind.
template <class = void>
inline void delete_link_quietly(rtnetlink& netlink, int index, const std::string& name) noexcept {
    try {
        delete_link(netlink, index, name);
    } catch (...) {
    }
}

// The address with its prefix in one request. (SIOCSIFADDR would first give
// the address its old class mask, a /8 that a concurrent pool dump would
// take as covering every slot.)
template <class = void>
inline long add_address(rtnetlink& netlink, int index, const ipv4_interface& address) {
    netlink_message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg h{};
    h.ifa_family = AF_INET;
    h.ifa_prefixlen = address.prefix_length;
    h.ifa_index = static_cast<unsigned>(index);
    m.add_header(h);
    const in_addr in = address.address.to_in_addr();
    m.add_attribute(IFA_LOCAL, &in, sizeof in);
    m.add_attribute(IFA_ADDRESS, &in, sizeof in);
    return netlink.request(m);
}

// The same for IPv6, without duplicate address detection (IFA_F_NODAD):
// usable at once. -EAFNOSUPPORT: the kernel has no IPv6; -EACCES: IPv6 is
// disabled on the link (disable_ipv6).
template <class = void>
inline long add_address(rtnetlink& netlink, int index, const ipv6_interface& address) {
    netlink_message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg h{};
    h.ifa_family = AF_INET6;
    h.ifa_prefixlen = address.prefix_length;
    h.ifa_flags = IFA_F_NODAD;
    h.ifa_index = static_cast<unsigned>(index);
    m.add_header(h);
    const in6_addr in = address.address.to_in6_addr();
    m.add_attribute(IFA_LOCAL, &in, sizeof in);
    m.add_attribute(IFA_ADDRESS, &in, sizeof in);
    m.add_u32(IFA_FLAGS, IFA_F_NODAD);
    return netlink.request(m);
}

// fe80::1/64: the host end's link-local address (each link has its own).
inline const ipv6_interface host_link_local{{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, 64};

// The /64 of `pool` that goes with an IPv4 subnet: its subnet ID (bytes 6
// and 7) is the /30's slot in its /16, the low 16 bits of its network
// address divided by 4; host end ::1, sandbox ::2.
template <class = void>
inline std::pair<ipv6_interface, ipv6_interface> ipv6_pair_for(const ipv6_interface& pool,
                                                               const ipv4_interface& ipv4) {
    const std::uint32_t slot = (ipv4.network().host_order() & 0xffffu) >> 2;
    ipv6_address subnet = pool.network();
    subnet.bytes[6] = static_cast<std::uint8_t>(subnet.bytes[6] | (slot >> 8));
    subnet.bytes[7] = static_cast<std::uint8_t>(subnet.bytes[7] | (slot & 0xffu));
    ipv6_address host = subnet, sandbox = subnet;
    host.bytes[15] = 1;
    sandbox.bytes[15] = 2;
    return {{host, 64}, {sandbox, 64}};
}

// What apply_ipv6_setup's failed_part numbers mean.
template <class = void>
inline std::string ipv6_setup_failure(int failed_part) {
    switch (failed_part) {
        case ctr::detail::ipv6_part_socket: return "opening a socket";
        case ctr::detail::ipv6_part_index: return "looking up the interface";
        case ctr::detail::ipv6_part_address: return "setting the IPv6 address";
        default: return "adding the IPv6 default route";
    }
}

template <class = void>
inline ctr::detail::ipv6_setup make_ipv6_setup(const std::string& name, const std::optional<ipv6_interface>& address,
                                               std::optional<ipv6_address> gateway) {
    ctr::detail::ipv6_setup setup;
    name.copy(setup.name, IFNAMSIZ - 1);
    if (!address) return setup;
    setup.present = 1;
    setup.prefix_length = address->prefix_length;
    setup.address = address->address.to_in6_addr();
    if (gateway) setup.gateway = gateway->to_in6_addr();
    return setup;
}

template <class = void>
inline long set_link_up(rtnetlink& netlink, int index) {
    netlink_message m(RTM_NEWLINK, 0);
    ifinfomsg h{};
    h.ifi_family = AF_UNSPEC;
    h.ifi_index = index;
    h.ifi_flags = IFF_UP;
    h.ifi_change = IFF_UP;
    m.add_header(h);
    return netlink.request(m);
}

// "ctr-0ae70004" for 10.231.0.5/30: the name that claims a pool subnet.
template <class = void>
inline std::string subnet_link_name(const ipv4_interface& address) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string name = "ctr-";
    const std::uint32_t network = address.network().host_order();
    for (int shift = 28; shift >= 0; shift -= 4) name += hex[(network >> shift) & 0xf];
    return name;
}

// Serializes choosing and claiming a pool slot between the threads of this
// process. Between processes, the generated name "ctr-<subnet>" is the claim (the
// create is NLM_F_EXCL). A lock object that other processes could see would
// have to be an fd, and children being set up at the same moment on other
// threads would hold a copy of it until they exec, while they wait for
// their own parent, who waits for the lock.
template <class = void>
inline std::mutex& pool_mutex() {
    static std::mutex m;
    return m;
}

// Why creating a link failed, in words an operator can act on.
template <class = void>
inline std::string create_link_reason(long negative_errno, const std::string& kernel_message) {
    std::string reason;
    switch (-negative_errno) {
        case EPERM:
            reason = "creating network links needs CAP_NET_ADMIN in the caller's network namespace: run as root "
                     "(rootless, use options::pasta: net::pasta, package passt)";
            break;
        case EEXIST: reason = "an interface with this name exists"; break;
        case EOPNOTSUPP: reason = "this kernel has no veth driver (CONFIG_VETH; modprobe veth)"; break;
        default: break;
    }
    if (!kernel_message.empty()) reason += (reason.empty() ? "" : "; ") + std::string("kernel: ") + kernel_message;
    return reason;
}

}  // namespace detail

// A network interface in the namespace it was made in, owned: deleted when
// the owner ends (deleting one end of a veth deletes both). It keeps its own
// netlink socket, so it is removed from the right namespace whichever
// thread ends it. Deleting is slow (the kernel waits for RCU grace periods:
// about 30 ms here), which is why spawn leaves a sandbox's pair to the
// kernel, which deletes it in the background when the namespace ends.
class [[nodiscard]] link {
public:
    link() = default;
    link(link&& other) noexcept
        : netlink_(std::move(other.netlink_)), index_(std::exchange(other.index_, 0)), name_(std::move(other.name_)) {}
    link& operator=(link&& other) noexcept {
        if (this != &other) {
            remove_quietly();
            netlink_ = std::move(other.netlink_);
            index_ = std::exchange(other.index_, 0);
            name_ = std::move(other.name_);
        }
        return *this;
    }
    ~link() { remove_quietly(); }

    template <class = void>
    int index() const noexcept { return index_; }
    template <class = void>
    const std::string& name() const noexcept { return name_; }
    explicit operator bool() const noexcept { return index_ > 0; }

    // Deletes the interface now. Gone already (its namespace ended and took
    // the pair with it) is not an error.
    template <class = void>
    void remove() {
        if (index_ <= 0) return;
        const long r = detail::delete_link(*netlink_, std::exchange(index_, 0), name_);
        if (r < 0 && r != -ENODEV) throw error(step::delete_link, static_cast<int>(-r), name_);
    }
    // Leaves the interface to the kernel: it goes when its namespace does.
    template <class = void>
    void release() noexcept { index_ = 0; }

    // Takes ownership of interface `index`, to be deleted through `netlink`.
    template <class = void>
    static link adopt(detail::rtnetlink netlink, int index, std::string name) {
        link out;
        out.netlink_ = std::move(netlink);
        out.index_ = index;
        out.name_ = std::move(name);
        return out;
    }

private:
    template <class = void>
    void remove_quietly() noexcept {
        if (index_ <= 0 || !netlink_) return;
        detail::delete_link_quietly(*netlink_, std::exchange(index_, 0), name_);
    }

    std::optional<detail::rtnetlink> netlink_;
    int index_ = 0;
    std::string name_;
};

// A veth pair: the host end owned here, the other end in a sandbox's
// namespace, still to be configured from inside (container_setup()).
class veth_pair;
template <class = void>
veth_pair create_veth(const veth& options, peer_namespace peer);

class [[nodiscard]] veth_pair {
public:
    template <class = void>
    const veth_info& info() const noexcept { return info_; }
    template <class = void>
    net::link& host_link() noexcept { return host_; }
    // What the sandbox side applies inside its namespace.
    template <class = void>
    ctr::detail::interface_setup container_setup() const {
        return detail::make_setup(info_.container_name, info_.container_address,
                                  info_.default_route ? std::optional(info_.host_address.address) : std::nullopt,
                                  info_.mtu);
    }
    // Its IPv6 half ("not present" without IPv6), applied after container_setup().
    template <class = void>
    ctr::detail::ipv6_setup container_ipv6_setup() const {
        return detail::make_ipv6_setup(info_.container_name, info_.container_ipv6,
                                       info_.default_route && info_.host_ipv6
                                           ? std::optional(info_.host_ipv6->address)
                                           : std::nullopt);
    }

private:
    template <class> friend veth_pair create_veth(const veth&, peer_namespace);
    net::link host_;
    veth_info info_;
};

// Sets an address (and a default route through `gateway`, and an MTU) on an
// interface of the current thread's network namespace and brings it up.
template <class = void>
inline void configure_interface(const std::string& name, const ipv4_interface& address,
                                std::optional<ipv4_address> gateway = {}, unsigned mtu = 0) {
    detail::check_interface_name(name);
    const auto setup = detail::make_setup(name, address, gateway, mtu);
    int failed_part = 0;
    if (const long r = ctr::detail::apply_interface_setup(setup, &failed_part); r < 0)
        throw error(step::configure_link, static_cast<int>(-r), name,
                    detail::interface_setup_failure(failed_part) + " " +
                        (failed_part == 3   ? std::to_string(mtu)
                         : failed_part == 5 ? "via " + (gateway ? gateway->to_string() : std::string())
                                            : address.to_string()));
}

// Adds an IPv6 address (without duplicate address detection) and, with a
// gateway, a default route through it, to an interface of the current
// thread's network namespace that is up.
template <class = void>
inline void configure_ipv6(const std::string& name, const ipv6_interface& address,
                           std::optional<ipv6_address> gateway = {}) {
    detail::check_interface_name(name);
    const auto setup = detail::make_ipv6_setup(name, address, gateway);
    int failed_part = 0;
    if (const long r = ctr::detail::apply_ipv6_setup(setup, &failed_part); r < 0)
        throw error(step::configure_link, static_cast<int>(-r), name,
                    detail::ipv6_setup_failure(failed_part) + " " +
                        (failed_part == ctr::detail::ipv6_part_route
                             ? "via " + (gateway ? gateway->to_string() : std::string())
                             : address.to_string()));
}

// Creates a veth pair: the host end in the caller's network namespace,
// addressed and up; the other end in `peer`, named options.container_name,
// to be configured from inside. Throws ctr::error naming the link.
template <class>
inline veth_pair create_veth(const veth& options, peer_namespace peer) {
    if (!options.host_name.empty()) detail::check_interface_name(options.host_name);
    detail::check_interface_name(options.container_name);
    if (options.host_address.has_value() != options.container_address.has_value())
        throw error(step::prepare, EINVAL, {}, "give both veth addresses (host and container) or neither");
    if (options.host_address && !options.host_address->contains(options.container_address->address))
        throw error(step::prepare, EINVAL, options.container_address->to_string(),
                    "the container address is not in the host end's subnet " + options.host_address->to_string());
    if (options.host_address && options.host_address->address == options.container_address->address)
        throw error(step::prepare, EINVAL, options.host_address->to_string(), "both ends have the same address");
    if (!options.host_address && options.pool.prefix_length > 30)
        throw error(step::prepare, EINVAL, options.pool.to_string(), "the address pool must hold at least a /30");
    if (options.host_ipv6.has_value() != options.container_ipv6.has_value())
        throw error(step::prepare, EINVAL, {}, "give both IPv6 veth addresses (host and container) or neither");
    if (options.host_ipv6 && !options.host_ipv6->contains(options.container_ipv6->address))
        throw error(step::prepare, EINVAL, options.container_ipv6->to_string(),
                    "the container's IPv6 address is not in the host end's subnet " + options.host_ipv6->to_string());
    if (options.host_ipv6 && options.host_ipv6->address == options.container_ipv6->address)
        throw error(step::prepare, EINVAL, options.host_ipv6->to_string(), "both ends have the same IPv6 address");
    if (options.ipv6 && !options.host_ipv6 && options.ipv6_pool.prefix_length > 48)
        throw error(step::prepare, EINVAL, options.ipv6_pool.to_string(),
                    "the IPv6 pool must be a /48 or wider (a /64 for each of 65536 slots)");
    if (options.mtu != 0 && (options.mtu < 68 || options.mtu > 65535))
        throw error(step::prepare, EINVAL, std::to_string(options.mtu), "the MTU must be 68 to 65535");
    if (peer.netns_fd < 0 && peer.pid <= 0)
        throw error(step::prepare, EINVAL, {}, "no network namespace given for the veth's other end");

    auto netlink = detail::rtnetlink::open();
    veth_pair pair;
    pair.info_.container_name = options.container_name;
    pair.info_.default_route = options.default_route;
    pair.info_.mtu = options.mtu;

    // One launch of this process at a time chooses a slot and claims it (the
    // name and the address below).
    std::lock_guard lock(detail::pool_mutex());
    const bool from_pool = !options.host_address;
    std::vector<ipv4_interface> in_use;
    if (from_pool) in_use = detail::networks_in_use_consistent(netlink);
    const std::uint32_t base = options.pool.network().host_order();
    const std::uint32_t slots = from_pool ? 1u << (30 - options.pool.prefix_length) : 65536u;
    bool created = false;
    for (std::uint32_t slot = 0; slot < slots && !created; ++slot) {
        ipv4_interface host_address, container_address;
        if (from_pool) {
            const ipv4_interface subnet{ipv4_address::from_host_order(base + 4 * slot), 30};
            bool taken = false;
            for (const auto& used : in_use) taken = taken || detail::overlaps(subnet, used);
            if (taken) continue;
            host_address = {ipv4_address::from_host_order(base + 4 * slot + 1), 30};
            container_address = {ipv4_address::from_host_order(base + 4 * slot + 2), 30};
        } else {
            host_address = *options.host_address;
            container_address = *options.container_address;
        }
        // A generated name names the subnet, whatever pool it came from; a
        // link still being deleted with an ended sandbox may hold one for a
        // while, and the next slot is tried then.
        const std::string name = !options.host_name.empty() ? options.host_name
                                 : from_pool              ? detail::subnet_link_name(host_address)
                                                          : "ctr" + std::to_string(slot);
        const long r = detail::request_veth(netlink, name, options.container_name, peer, options.mtu);
        if (r == -EEXIST) {
            const long taken = detail::interface_index(name);
            if (taken < 0)
                throw error(step::create_link, static_cast<int>(-taken), name, "looking up whether the name is taken");
            if (taken > 0 && options.host_name.empty()) continue;
            if (taken == 0)
                throw error(step::create_link, EEXIST, options.container_name,
                            "the sandbox's namespace already has an interface with this name");
        }
        if (r < 0) {
            // The link may exist even though its acknowledgement was lost.
            if (r != -EEXIST && detail::interface_index(name) > 0) detail::delete_link_quietly(netlink, 0, name);
            throw error(step::create_link, static_cast<int>(-r), name, detail::create_link_reason(r, netlink.last_message()));
        }
        pair.info_.host_name = name;
        pair.info_.host_address = host_address;
        pair.info_.container_address = container_address;
        created = true;
    }
    if (!created)
        throw error(step::create_link, EADDRNOTAVAIL, from_pool ? options.pool.to_string() : "ctr<N>",
                    from_pool ? "no free /30 left in the address pool" : "no free ctr<N> name");

    const long index = detail::interface_index(pair.info_.host_name);
    if (index <= 0) {
        detail::delete_link_quietly(netlink, 0, pair.info_.host_name);
        throw error(step::create_link, index < 0 ? static_cast<int>(-index) : ENODEV, pair.info_.host_name,
                    index < 0 ? "looking up the new link's index" : "the new link vanished");
    }
    pair.info_.host_index = static_cast<int>(index);
    if (const long r = detail::add_address(netlink, pair.info_.host_index, pair.info_.host_address); r < 0) {
        const std::string kernel = netlink.last_message();
        detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
        throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name,
                    "setting the address " + pair.info_.host_address.to_string() +
                        (kernel.empty() ? "" : "; kernel: " + kernel));
    }
    if (options.ipv6) {
        auto [host6, sandbox6] = options.host_ipv6 ? std::pair(*options.host_ipv6, *options.container_ipv6)
                                                   : detail::ipv6_pair_for(options.ipv6_pool, pair.info_.host_address);
        const long r = detail::add_address(netlink, pair.info_.host_index, host6);
        // No IPv6 in this kernel, or IPv6 disabled for new links: IPv4 alone.
        if (r == 0) {
            pair.info_.host_ipv6 = host6;
            pair.info_.container_ipv6 = sandbox6;
            // A link-local address usable at once too. The kernel makes one
            // when the link comes up, tentative for a second or two of
            // duplicate address detection, and a router sends neighbour
            // solicitations for packets it forwards only from a link-local
            // address that is not tentative: until then, forwarded packets
            // (published ports' clients, answers from beyond the host) to a
            // new sandbox wait.
            const long local = detail::add_address(netlink, pair.info_.host_index, detail::host_link_local);
            if (local < 0) {
                const std::string kernel = netlink.last_message();
                detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
                throw error(step::configure_link, static_cast<int>(-local), pair.info_.host_name,
                            "setting the address " + detail::host_link_local.to_string() +
                                (kernel.empty() ? "" : "; kernel: " + kernel));
            }
        } else if (r != -EAFNOSUPPORT && r != -EACCES) {
            const std::string kernel = netlink.last_message();
            detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
            throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name,
                        "setting the IPv6 address " + host6.to_string() + (kernel.empty() ? "" : "; kernel: " + kernel) +
                            " (veth::ipv6 = false leaves IPv6 out)");
        }
    }
    if (const long r = detail::set_link_up(netlink, pair.info_.host_index); r < 0) {
        detail::delete_link_quietly(netlink, pair.info_.host_index, pair.info_.host_name);
        throw error(step::configure_link, static_cast<int>(-r), pair.info_.host_name, "bringing it up");
    }
    pair.host_ = link::adopt(std::move(netlink), static_cast<int>(index), pair.info_.host_name);
    return pair;
}

}  // namespace ctr::net
