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
    });
    plan.add(launch_phase::create_namespaces,
             {.code = child_op_code::configure_interface, .step = step::configure_link, .a = sync},
             wanted.container_name, [name = wanted.container_name](const child_report_view& report) {
                 return error(step::configure_link, report.error, name,
                              net::detail::interface_setup_failure(report.detail));
             });
    return &made;
}

}  // namespace ctr::process::detail
