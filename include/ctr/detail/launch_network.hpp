#pragma once
// Launch layer: a veth pair into the child's new network namespace. The
// parent creates it while the child waits and sends the child's end's
// settings after the go byte; the child configures its end.

#include <ctr/detail/launch_plan.hpp>
#include <ctr/net.hpp>
#include <ctr/outbound.hpp>
#include <ctr/port_nat.hpp>
#include <ctr/spawn_options.hpp>

#include <cstring>
#include <memory>
#include <optional>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// The rules a network adds outside the sandbox, deleted after it: the
// outbound NAT rule first, then the published ports' (as members are
// destroyed, the last declared first).
struct network_rules {
    net::port_nat ports;
    net::outbound_nat outbound;
};

// The child's step that configures its end: reads the interface_setup the
// parent sent after the go byte (op.a = the sync fd) and applies it; which
// part failed goes to op.data2 (int*). Async-signal-safe.
CTR_CHILD_CODE inline long child_configure_interface_step(const child_op& op) noexcept {
    return child_configure_interface(static_cast<int>(op.a), static_cast<int*>(const_cast<void*>(op.data2)));
}

// Adds the network's steps. Its parent step records what it made (names and
// addresses of both ends) in plan.network_made; the outbound NAT and the
// published ports' rules, when asked for, go to plan.ends_after_sandbox.
template <class = void>
inline void plan_network(launch_plan& plan, const options& opts) {
    if (!opts.network) return;
    const net::veth& wanted = *opts.network;
    const auto info = std::make_shared<net::veth_info>();
    plan.network_made = info;
    net::veth_info* const made = info.get();
    net::outbound_nat* outbound = nullptr;
    net::port_nat* ports = nullptr;
    if (wanted.outbound || !wanted.publish.empty()) {
        const auto rules = std::make_shared<network_rules>();
        if (wanted.outbound) outbound = &rules->outbound;
        if (!wanted.publish.empty()) ports = &rules->ports;
        plan.ends_after_sandbox.push_back(rules);
    }
    const int sync = plan.sync_channel();
    plan.while_child_waits([&wanted, made, outbound, ports](parent_step_context& child) {
        net::veth_pair pair = net::create_veth(wanted, net::peer_namespace::of_process(child.pid));
        *made = pair.info();
        // From here the pair is the namespace's: if a later step fails, the
        // child is killed, its namespace ends and the kernel deletes the pair.
        pair.host_link().release();
        if (outbound) *outbound = net::outbound_nat::add(*made);
        if (ports) {
            *ports = net::port_nat::add(*made, wanted.publish);
            made->published = ports->mappings();
        }
        const interface_setup setup = pair.container_setup();
        child.message_to_child.append(reinterpret_cast<const char*>(&setup), sizeof setup);
        if (wanted.ipv6) {
            const ipv6_setup setup6 = pair.container_ipv6_setup();
            child.message_to_child.append(reinterpret_cast<const char*>(&setup6), sizeof setup6);
        }
    });
    plan.add(launch_phase::create_namespaces,
             {.code = child_op_code::call, .step = step::configure_link, .a = sync,
              .data2 = &plan.shared->failure_detail, .run = child_configure_interface_step},
             wanted.container_name, [name = wanted.container_name](const child_report_view& report) {
                 return error(step::configure_link, report.error, name,
                              net::detail::interface_setup_failure(report.detail));
             });
    if (wanted.ipv6)
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::call, .step = step::configure_link, .a = sync,
                  .data2 = &plan.shared->failure_detail, .run = child_configure_ipv6},
                 wanted.container_name, [name = wanted.container_name, made](const child_report_view& report) {
                     std::string what = net::detail::ipv6_setup_failure(report.detail);
                     if (made->container_ipv6)
                         what += report.detail == ipv6_part_route ? " via " + made->host_ipv6->address.to_string()
                                                                  : " " + made->container_ipv6->to_string();
                     if (report.error == EACCES)
                         what += " (IPv6 is disabled in the sandbox's namespace: net.ipv6.conf.default.disable_ipv6 "
                                 "with net.core.devconf_inherit_init_net; veth::ipv6 = false leaves IPv6 out)";
                     return error(step::configure_link, report.error, name, what);
                 });
}

}  // namespace ctr::process::detail

namespace ctr::detail {
template <>
inline constexpr bool layer_header_included<net::veth> = true;
template <>
struct launch_layer<net::veth> {
    template <class = void>
    static void add_steps(launch_plan& plan, const process::options& opts) {
        process::detail::plan_network(plan, opts);
    }
};
}  // namespace ctr::detail
