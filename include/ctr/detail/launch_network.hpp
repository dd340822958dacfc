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
#include <optional>

namespace ctr::process::detail {

using namespace ::ctr::detail;

// Adds the network's steps; returns where the parent step records what it
// made (names and addresses of both ends), or null without a network. The
// outbound NAT rule, when asked for, goes to plan.outbound_made, and the
// published ports' rules to plan.ports_made.
template <class = void>
inline const std::optional<net::veth_info>* plan_network(launch_plan& plan, const options& opts) {
    if (!opts.network) return nullptr;
    const net::veth& wanted = *opts.network;
    auto& made = plan.keep(std::optional<net::veth_info>{});
    if (wanted.outbound) plan.outbound_made = &plan.keep(net::outbound_nat{});
    net::outbound_nat* const outbound = plan.outbound_made;
    if (!wanted.publish.empty()) plan.ports_made = &plan.keep(net::port_nat{});
    net::port_nat* const ports = plan.ports_made;
    const int sync = plan.sync_channel();
    plan.while_child_waits([&wanted, &made, outbound, ports](parent_step_context& child) {
        net::veth_pair pair = net::create_veth(wanted, net::peer_namespace::of_process(child.pid));
        made = pair.info();
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
             {.code = child_op_code::configure_interface, .step = step::configure_link, .a = sync},
             wanted.container_name, [name = wanted.container_name](const child_report_view& report) {
                 return error(step::configure_link, report.error, name,
                              net::detail::interface_setup_failure(report.detail));
             });
    if (wanted.ipv6)
        plan.add(launch_phase::create_namespaces,
                 {.code = child_op_code::call, .step = step::configure_link, .a = sync,
                  .data2 = &plan.shared->failure_detail, .run = child_configure_ipv6},
                 wanted.container_name, [name = wanted.container_name, &made](const child_report_view& report) {
                     std::string what = net::detail::ipv6_setup_failure(report.detail);
                     if (made && made->container_ipv6)
                         what += report.detail == ipv6_part_route ? " via " + made->host_ipv6->address.to_string()
                                                                  : " " + made->container_ipv6->to_string();
                     if (report.error == EACCES)
                         what += " (IPv6 is disabled in the sandbox's namespace: net.ipv6.conf.default.disable_ipv6 "
                                 "with net.core.devconf_inherit_init_net; veth::ipv6 = false leaves IPv6 out)";
                     return error(step::configure_link, report.error, name, what);
                 });
    return &made;
}

}  // namespace ctr::process::detail
