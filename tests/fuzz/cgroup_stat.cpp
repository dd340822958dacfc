// Fuzz target: cgroup files of "key value" lines (memory.stat, cpu.stat,
// memory.events, pids.events, cpuacct.stat, memory.oom_control), io.max
// lines, limit values, /proc/<pid>/stat and the names ctr gives its groups.
//
// Properties: no exception at all; keyed_value agrees with a plain
// reference reading (first line whose first word is the key, its second
// word a decimal that fits 64 bits); a number io_max_value returns is in
// the text; a group name that parses is written back to a name that parses
// to the same fields.
#include "fuzz.hpp"

#include <ctr/detail/cgroup_parse.hpp>

#include <optional>

namespace d = ctr::detail;

namespace {

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

std::optional<std::uint64_t> reference_decimal(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    unsigned __int128 value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > ~std::uint64_t{0}) return std::nullopt;
    return static_cast<std::uint64_t>(value);
}

std::optional<std::uint64_t> reference_keyed_value(std::string_view text, std::string_view key) {
    for (std::string_view line : ctr_fuzz::split(text, '\n')) {
        const auto w = words(line);
        if (w.size() >= 2 && w[0] == key) return reference_decimal(w[1]);
    }
    return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    std::vector<std::string_view> keys = {"usage_usec", "nr_throttled", "oom_kill", "max", "user", "anon"};
    for (std::string_view line : ctr_fuzz::split(text, '\n')) {
        if (keys.size() >= 16) break;
        if (const auto w = words(line); !w.empty()) keys.push_back(w[0]);
    }
    for (std::string_view key : keys) {
        const auto got = d::keyed_value(text, key);
        const auto want = reference_keyed_value(text, key);
        CTR_FUZZ_CHECK(got == want, "key '%.*s': %s, reference %s", int(key.size()), key.data(),
                       got ? std::to_string(*got).c_str() : "none", want ? std::to_string(*want).c_str() : "none");
    }

    CTR_FUZZ_CHECK(d::parse_decimal(d::cgroup_trim(text)) == reference_decimal(d::cgroup_trim(text)),
                   "parse_decimal differs from the reference");
    if (const auto limit = d::parse_limit_value(text); limit && *limit != d::cgroup_unlimited)
        CTR_FUZZ_CHECK(text.find(std::to_string(*limit)) != std::string_view::npos, "limit %llu is not in the text", static_cast<unsigned long long>(*limit));

    for (std::string_view device : {"8:0", "253:1"})
        for (std::string_view key : {"rbps", "wbps", "riops", "wiops"})
            if (const auto v = d::io_max_value(text, device, key); v && *v != d::cgroup_unlimited)
                CTR_FUZZ_CHECK(text.find(std::to_string(*v)) != std::string_view::npos,
                               "io.max value %llu is not in the text", static_cast<unsigned long long>(*v));

    if (const auto start = d::parse_proc_stat_start(text))
        CTR_FUZZ_CHECK(start->second != ' ' && start->second != '\t', "a blank state");

    (void)d::controller_list(text);

    if (const auto name = d::parse_group_name(text)) {
        const std::string written = d::format_group_name(*name);
        const auto again = d::parse_group_name(written);
        CTR_FUZZ_CHECK(again && again->prefix == name->prefix && again->pid == name->pid &&
                           again->start_time == name->start_time && again->counter == name->counter &&
                           again->random == name->random,
                       "'%s' does not read back", written.c_str());
    }
    return 0;
}
