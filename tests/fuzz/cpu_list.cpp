// Fuzz target: CPU and memory-node lists as cpuset files hold them
// (detail::parse_cpu_list: "0-3,5,7-8").
//
// Properties: only ctr::error(EINVAL) for bad text; every member is below
// 65536; the set written back as ranges parses to the same set.
#include "fuzz.hpp"

#include <ctr/cgroup.hpp>

#include <cerrno>
#include <string>
#include <vector>

namespace d = ctr::detail;

namespace {

std::string as_ranges(const std::vector<unsigned>& cpus) {
    std::string out;
    for (auto it = cpus.begin(); it != cpus.end();) {
        const unsigned first = *it;
        unsigned last = first;
        while (++it != cpus.end() && *it == last + 1) ++last;
        if (!out.empty()) out += ',';
        out += std::to_string(first);
        if (last != first) out += "-" + std::to_string(last);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);
    std::vector<unsigned> cpus;
    try {
        cpus = d::parse_cpu_list(text, "fuzz");
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL, "errno %d", e.code().value());
        return 0;
    }
    CTR_FUZZ_CHECK(cpus.empty() || cpus.back() < 65536, "member %u", cpus.back());
    for (std::size_t i = 1; i < cpus.size(); ++i)
        CTR_FUZZ_CHECK(cpus[i - 1] < cpus[i], "not sorted or repeated at %u", cpus[i]);
    const std::string written = as_ranges(cpus);
    std::vector<unsigned> again;
    try {
        again = d::parse_cpu_list(written, "fuzz");
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(false, "'%s' (written back) is refused: %s", written.c_str(), e.what());
    }
    CTR_FUZZ_CHECK(again == cpus, "'%s' reads back as another set", written.c_str());
    return 0;
}
