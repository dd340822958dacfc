// Fuzz target: ctr-run's command line (ctr-run/flags.hpp):
// parse_arguments over an argv made of the input's lines, and the value
// parsers (-m sizes, --timeout, -v, --tmpfs) on each line alone.
//
// Properties: a bad command line throws usage_error and nothing else (no
// ctr::error, no std::out_of_range, no crash), naming a flag and saying
// why; a command line that parses keeps the rules --help states: a command
// unless --help, --version or --probe, absolute destinations, tmpfs sizes
// the mount plan takes, --read-only not with --overlay, --memory-swap only with
// --memory, -p only with no --network, veth or pasta, sizes and durations positive, known
// capability names.
#include "fuzz.hpp"

#include "ctr-run/flags.hpp"

namespace {

template <typename Parse>
bool usage_errors_only(Parse parse) {
    try {
        parse();
        return true;
    } catch (const ctr_run::usage_error& e) {
        CTR_FUZZ_CHECK(!e.flag.empty() && !e.message.empty(), "a usage error without a flag or a reason");
        return false;
    }
}

bool absolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);
    std::vector<std::string> args = {"ctr-run"};
    for (std::string_view line : ctr_fuzz::split(text, '\n')) args.emplace_back(line);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    ctr_run::config c;
    if (usage_errors_only([&] { c = ctr_run::parse_arguments(static_cast<int>(args.size()), argv.data()); })) {
        CTR_FUZZ_CHECK(c.help || c.probe || c.version || !c.command.empty(), "no command");
        CTR_FUZZ_CHECK(!c.read_only || c.overlay.empty(), "--read-only with --overlay");
        CTR_FUZZ_CHECK(!c.memory_swap || c.memory, "--memory-swap without --memory");
        CTR_FUZZ_CHECK(c.publish.empty() || !c.network_given || c.network == ctr_run::network_mode::veth ||
                           c.network == ctr_run::network_mode::pasta,
                       "-p with a network that cannot publish");
        CTR_FUZZ_CHECK(!c.memory || *c.memory >= 1, "memory 0");
        CTR_FUZZ_CHECK(!c.cpus || *c.cpus > 0, "cpus <= 0");
        CTR_FUZZ_CHECK(c.timeout.count() >= 0, "negative timeout");
        CTR_FUZZ_CHECK(c.hostname.size() <= 64, "hostname of %zu bytes", c.hostname.size());
        CTR_FUZZ_CHECK(c.workdir.empty() || absolute(c.workdir), "relative workdir");
        for (const auto& v : c.volumes) CTR_FUZZ_CHECK(absolute(v.target) && !v.source.empty(), "volume");
        for (const auto& t : c.tmpfs) CTR_FUZZ_CHECK(absolute(t.target) && t.options.mode <= 07777, "tmpfs");
        for (const auto* names : {&c.cap_add, &c.cap_drop})
            for (const auto& name : *names)
                CTR_FUZZ_CHECK(name == "ALL" || ctr::caps::from_name(name), "capability '%s'", name.c_str());
        for (const auto& p : c.publish) CTR_FUZZ_CHECK(p.container_port >= 1, "container port 0");
        for (const auto& d : c.devices) CTR_FUZZ_CHECK(absolute(d.source) && absolute(d.target), "device");
        for (const auto& u : c.ulimits) CTR_FUZZ_CHECK(u.soft <= u.hard, "ulimit soft above hard");
        CTR_FUZZ_CHECK(c.stop_signal >= 1 && c.stop_signal <= 64, "stop signal %d", c.stop_signal);
        CTR_FUZZ_CHECK(!c.cpu_shares || (*c.cpu_shares >= 2 && *c.cpu_shares <= 262144), "cpu shares");
    }

    for (std::size_t i = 1; i < args.size() && i <= 8; ++i) {
        const std::string_view value = args[i];
        usage_errors_only([&] { CTR_FUZZ_CHECK(ctr_run::parse_size("-m", value) >= 1, "size 0"); });
        usage_errors_only([&] { CTR_FUZZ_CHECK(ctr_run::parse_duration("--timeout", value).count() >= 1, "0 ms"); });
        usage_errors_only([&] {
            const auto v = ctr_run::parse_volume("-v", value);
            CTR_FUZZ_CHECK(absolute(v.target) && !v.source.empty(), "volume '%s'", args[i].c_str());
        });
        usage_errors_only([&] {
            const auto t = ctr_run::parse_tmpfs("--tmpfs", value);
            CTR_FUZZ_CHECK(absolute(t.target), "tmpfs '%s'", args[i].c_str());
            const std::string& s = t.options.size;
            // What the flag accepts, the mount plan must take: a bad size is
            // a usage error, not a failed launch.
            CTR_FUZZ_CHECK(s.empty() || ctr::mount::detail::valid_tmpfs_size(s), "tmpfs size '%s'", s.c_str());
        });
        usage_errors_only([&] {
            const auto m = ctr_run::parse_mount("--mount", value);
            CTR_FUZZ_CHECK(m.bind.has_value() != m.tmpfs.has_value(), "--mount '%s' is neither or both", args[i].c_str());
        });
        usage_errors_only([&] { ctr_run::parse_ulimit("--ulimit", value); });
        usage_errors_only([&] { ctr_run::parse_device("--device", value); });
        usage_errors_only([&] { ctr_run::parse_add_host("--add-host", value); });
        usage_errors_only([&] { ctr_run::parse_user("-u", value); });
        usage_errors_only([&] {
            const auto cpus = ctr_run::parse_cpu_list("--cpuset-cpus", value);
            CTR_FUZZ_CHECK(!cpus.empty() && ctr_run::parse_cpu_list("again", ctr_run::format_cpu_list(cpus)) == cpus,
                           "cpu list '%s' does not round-trip", args[i].c_str());
        });
    }
    return 0;
}
