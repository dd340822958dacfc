// Fuzz target: byte counts as people write them (ctr::cgroup::parse_size,
// detail::parse_size: "64M", "1.5G", "2TiB", "max").
//
// Properties: only ctr::error(EINVAL) for bad text; "max" alone is
// unlimited and nothing else reaches that value; a parsed size reads back
// from its decimal text, and from its K/M/G text when it is a whole number
// of those units.
#include "fuzz.hpp"

#include <ctr/cgroup.hpp>

#include <cerrno>

namespace d = ctr::detail;

namespace {

std::optional<std::uint64_t> try_parse(std::string_view text) {
    try {
        return d::parse_size(text, "fuzz");
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL, "errno %d for '%.*s'", e.code().value(), int(text.size()), text.data());
        return std::nullopt;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);
    const auto value = try_parse(text);

    // The public name is the same parser.
    std::optional<std::uint64_t> public_value;
    try {
        public_value = ctr::cgroup::parse_size(text);
    } catch (const ctr::error&) {
    }
    CTR_FUZZ_CHECK(public_value == value, "cgroup::parse_size and detail::parse_size disagree");

    if (!value) return 0;
    if (d::cgroup_trim(text) == "max") {
        CTR_FUZZ_CHECK(*value == d::cgroup_unlimited, "'max' is not unlimited");
        return 0;
    }
    CTR_FUZZ_CHECK(*value != d::cgroup_unlimited, "'%.*s' reads as unlimited", int(size), text.data());

    const std::string decimal = std::to_string(*value);
    CTR_FUZZ_CHECK(try_parse(decimal) == value, "%s does not read back", decimal.c_str());
    const char* units[] = {"K", "M", "G", "T", "P", "E"};
    for (int i = 0; i < 6; ++i) {
        const int shift = 10 * (i + 1);
        if (*value % (std::uint64_t{1} << shift) != 0) break;
        const std::string with_unit = std::to_string(*value >> shift) + units[i];
        CTR_FUZZ_CHECK(try_parse(with_unit) == value, "%s is not %s bytes", with_unit.c_str(), decimal.c_str());
    }
    return 0;
}
