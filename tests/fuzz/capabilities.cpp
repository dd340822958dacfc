// Fuzz target: capability names and lists (caps::from_name, caps::parse,
// caps::set::parse_list: "CAP_NET_ADMIN", "net_admin", "12", "ALL").
//
// Properties: only ctr::error(EINVAL) for bad text; a name found is a
// capability this header knows and its name reads back to it; a parsed
// list written with to_string parses to the same set.
#include "fuzz.hpp"

#include <ctr/capabilities.hpp>

#include <cerrno>

namespace caps = ctr::caps;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    if (const auto c = caps::from_name(text)) {
        CTR_FUZZ_CHECK(*c <= caps::last_known, "from_name gave %u", static_cast<unsigned>(*c));
        CTR_FUZZ_CHECK(caps::from_name(caps::name(*c)) == c, "the name of %u does not read back",
                       static_cast<unsigned>(*c));
    }

    try {
        const ctr::capability c = caps::parse(text);
        CTR_FUZZ_CHECK(static_cast<unsigned>(c) <= caps::max_number, "parse gave %u", static_cast<unsigned>(c));
        const std::string shown =
            caps::name(c).empty() ? std::to_string(static_cast<unsigned>(c)) : std::string(caps::name(c));
        CTR_FUZZ_CHECK(caps::parse(shown) == c, "'%s' does not read back", shown.c_str());
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL, "errno %d", e.code().value());
    }

    try {
        const caps::set s = caps::set::parse_list(text);
        const std::string written = s.to_string();
        CTR_FUZZ_CHECK(caps::set::parse_list(written) == s, "'%s' does not read back", written.c_str());
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL, "errno %d", e.code().value());
    }
    return 0;
}
