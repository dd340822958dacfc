// Fuzz target: ctr-run's config.json mapping (ctr-run/oci/config.hpp),
// parse_config over the input as the file's text.
//
// Properties: a config that cannot be run throws config_error and nothing
// else (no nlohmann exception, no ctr::error, no std::out_of_range, no
// crash), and its message starts with the field it is about ("<path>: ");
// a config that maps keeps the rules the mapping promises: args and an
// absolute cwd, a root plan in a new mount namespace, init off, and id maps
// only with a user namespace. The plan it made is then prepared, which may
// fail only with ctr::error (a bind source missing on this host, an option
// the mount layer refuses).
#include "fuzz.hpp"

#include "oci/config.hpp"

#include <ctr/mount.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);
    ctr_run::oci::container_config c;
    try {
        c = ctr_run::oci::parse_config(text, "/srv/bundle");
    } catch (const ctr_run::oci::config_error& e) {
        const std::string_view message = e.what();
        const auto colon = message.find(": ");
        CTR_FUZZ_CHECK(colon != std::string_view::npos && colon > 0 && colon + 2 < message.size(),
                       "a config_error without '<field>: <why>': %s", e.what());
        return 0;
    }
    const auto& o = c.options;
    CTR_FUZZ_CHECK(!c.args.empty() && !c.args[0].empty(), "no program");
    CTR_FUZZ_CHECK(!o.cwd.empty() && o.cwd[0] == '/', "cwd '%s'", o.cwd.c_str());
    CTR_FUZZ_CHECK(o.root.has_value(), "no root plan");
    CTR_FUZZ_CHECK(o.namespaces.has(ctr::ns::mount), "no new mount namespace");
    CTR_FUZZ_CHECK(!o.init, "init on");
    CTR_FUZZ_CHECK(o.id_maps.uid.empty() || o.namespaces.has(ctr::ns::user), "id maps without a user namespace");
    CTR_FUZZ_CHECK(c.bundle == "/srv/bundle", "bundle '%s'", c.bundle.c_str());
    CTR_FUZZ_CHECK(!o.umask || *o.umask <= 0777, "umask");
    for (const auto& r : o.rlimits) CTR_FUZZ_CHECK(r.soft <= r.hard, "rlimit soft above hard");
    if (c.cgroup) CTR_FUZZ_CHECK(c.cgroup->path.find(':') == std::string::npos, "systemd cgroup path");
    try {
        (void)o.root->prepare();
    } catch (const ctr::error&) {
    }
    return 0;
}
