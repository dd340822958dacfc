// Fuzz target: id map specs: /etc/subuid and /etc/subgid lines
// ("name:start:count", ns::detail::subordinate_range) and a process's own
// uid_map/gid_map ("inside outside count", ns::detail::own_map). Both read a
// file, so the input goes through a memfd.
//
// Properties: no exception at all; a subordinate range comes from a line of
// that user (by name or number) whose start and count fields are exactly the
// numbers returned, with count > 0 and start + count within 32 bits (a
// range the kernel cannot map must be skipped, never cut to 32 bits).
#include "fuzz.hpp"

#include <ctr/ns.hpp>

#include <sys/mman.h>
#include <unistd.h>

namespace {

std::string file_with(std::string_view text) {
    static const int fd = memfd_create("ctr-fuzz-id-map", MFD_CLOEXEC);
    CTR_FUZZ_CHECK(fd >= 0, "memfd_create failed");
    CTR_FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate failed");
    CTR_FUZZ_CHECK(pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()), "pwrite failed");
    return "/proc/self/fd/" + std::to_string(fd);
}

std::string_view trim_zeros(std::string_view digits) {
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    return digits;
}

// Whether some line of `user` (or `id`) has exactly these fields.
bool has_line(std::string_view text, std::string_view user, std::uint32_t id, const ctr::ns::id_range& r) {
    for (std::string_view line : ctr_fuzz::split(text, '\n')) {
        const auto fields = ctr_fuzz::split(line, ':');
        if (fields.size() != 3 || (fields[0] != user && fields[0] != std::to_string(id))) continue;
        if (trim_zeros(fields[1]) == std::to_string(r.outside) && trim_zeros(fields[2]) == std::to_string(r.count))
            return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);
    if (text.find('\0') != std::string_view::npos) return 0;  // not a text file
    const std::string path = file_with(text);

    const std::pair<std::string, std::uint32_t> users[] = {{"root", 0}, {"ctrtest", 1000}, {"", 4294967295U}};
    for (const auto& [user, id] : users) {
        const auto range = ctr::ns::detail::subordinate_range(path, user, id);
        if (!range) continue;
        CTR_FUZZ_CHECK(range->count > 0, "a range of 0 ids");
        CTR_FUZZ_CHECK(std::uint64_t{range->outside} + range->count <= std::uint64_t{1} << 32,
                       "%u + %u ids run past 2^32", range->outside, range->count);
        CTR_FUZZ_CHECK(has_line(text, user, id, *range), "%u:%u for '%s' is not a line of the file", range->outside,
                       range->count, user.c_str());
    }

    std::size_t lines = 0;
    for (std::string_view line : ctr_fuzz::split(text, '\n')) lines += line.empty() ? 0 : 1;
    CTR_FUZZ_CHECK(ctr::ns::detail::own_map(path.c_str()).size() <= lines, "more ranges than lines");
    return 0;
}
