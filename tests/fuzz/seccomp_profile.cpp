// Fuzz target: ctr-run's JSON seccomp profiles (ctr-run/oci/seccomp_profile.hpp),
// seccomp_from_json over the input read as JSON, under a context with no
// capabilities and one with all of them.
//
// Properties: a profile is either translated into a filter the kernel would
// take (at most 4096 instructions, ending in a return, install flags within
// LOG and SPEC_ALLOW) or refused with seccomp_error and nothing else, its
// message starting with the `where` it was given and saying why; the names
// reported skipped are names the x86-64 table does not know.
#include "fuzz.hpp"

#include "oci/seccomp_profile.hpp"

#include <nlohmann/json.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>

namespace {

namespace oci = ctr_run::oci;
namespace table = ctr::detail::syscall_table_x86_64;

void translate(const nlohmann::json& profile, ctr::caps::set caps) {
    std::vector<std::string> skipped;
    oci::seccomp_context context;
    context.capabilities = caps;
    context.kernel = oci::kernel_version{5, 10};
    context.skipped_names = &skipped;
    try {
        const auto filter = oci::seccomp_from_json(profile, context, "linux.seccomp");
        CTR_FUZZ_CHECK(filter != nullptr, "no filter and no error");
        CTR_FUZZ_CHECK(filter->size() > 0 && filter->size() <= BPF_MAXINSNS, "%zu instructions", filter->size());
        const sock_filter last = filter->instructions().back();
        CTR_FUZZ_CHECK(BPF_CLASS(last.code) == BPF_RET, "the program ends in %#x", last.code);
        CTR_FUZZ_CHECK((filter->install_flags() & ~(SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW)) == 0,
                       "install flags %#x", filter->install_flags());
        for (const std::string& name : skipped)
            CTR_FUZZ_CHECK(table::name_to_number(name) < 0, "skipped '%s', which the table knows", name.c_str());
    } catch (const oci::seccomp_error& e) {
        const std::string_view message = e.what();
        CTR_FUZZ_CHECK(message.starts_with("linux.seccomp") && message.find(": ") != std::string_view::npos &&
                           message.size() > message.find(": ") + 2,
                       "a message that does not say where and why: %s", e.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto profile = nlohmann::json::parse(ctr_fuzz::as_text(data, size), nullptr, false);
    if (profile.is_discarded()) return 0;
    translate(profile, ctr::caps::set::none());
    translate(profile, ctr::caps::set::all());
    return 0;
}
