#pragma once
// ctr-run's values: sizes, durations, volumes, tmpfs options and the other
// things a flag's value can be, parsed without touching the system. A bad
// value throws usage_error (one line naming the flag, exit 125) and nothing
// else: tests/fuzz/ctr_run_flags.cpp holds the parsers to that.

#include <ctr/mount.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr_run {

// A bad flag or value: one line naming the flag, exit 125.
struct usage_error {
    std::string flag;
    std::string message;
};

[[noreturn]] inline void bad_value(std::string_view flag, std::string message) {
    throw usage_error{std::string(flag), std::move(message)};
}

struct volume {
    std::string source, target;
    bool read_only = false;
};

struct tmpfs_mount {
    std::string target;
    ctr::mount::tmpfs_options options;
};


// ---- values ----------------------------------------------------------------

inline std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A non-negative decimal number with an optional fraction, and what follows it.
inline std::optional<std::pair<double, std::string_view>> leading_number(std::string_view text) {
    std::size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    if (end == 0) return std::nullopt;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value)) return std::nullopt;
    return std::pair{value, text.substr(end)};
}

// Docker's sizes: a number of bytes, or with b, k, m, g, t (binary units,
// any case, an optional trailing "b": 64m, 64MB, 1.5g).
inline std::uint64_t parse_size(std::string_view flag, std::string_view text) {
    const auto fail = [&] {
        bad_value(flag, "'" + std::string(text) + "' is not a size (examples: 1048576, 512k, 64m, 1.5g)");
    };
    const auto number = leading_number(text);
    if (!number) fail();
    std::string unit = lower(number->second);
    if (unit.size() == 2 && unit[1] == 'b' && unit[0] != 'b') unit.pop_back();
    double scale = 1;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k") scale = 1024.0;
    else if (unit == "m") scale = 1024.0 * 1024;
    else if (unit == "g") scale = 1024.0 * 1024 * 1024;
    else if (unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
    else fail();
    const double bytes = std::floor(number->first * scale);
    if (bytes < 1 || bytes > 9.2e18) bad_value(flag, "'" + std::string(text) + "' is out of range");
    return static_cast<std::uint64_t>(bytes);
}

// Seconds, fractions allowed, or with a unit: 1.5, 500ms, 10s, 2m, 1h.
inline std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
    const auto number = leading_number(text);
    const std::string unit = number ? lower(number->second) : "";
    double scale = 0;
    if (unit.empty() || unit == "s") scale = 1000;
    else if (unit == "ms") scale = 1;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    if (!number || scale == 0)
        bad_value(flag, "'" + std::string(text) + "' is not a duration (seconds, or with a unit: 1.5, 500ms, 2m)");
    const double ms = std::ceil(number->first * scale);
    if (ms < 1 || ms > 1e12) bad_value(flag, "'" + std::string(text) + "' is out of range (at least 1ms)");
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

template <typename Int>
std::optional<Int> parse_integer(std::string_view text) {
    Int value{};
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

inline std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

inline void require_absolute(std::string_view flag, std::string_view path, std::string_view what) {
    if (path.empty() || path[0] != '/')
        bad_value(flag, std::string(what) + " '" + std::string(path) + "' must be an absolute path");
}

inline volume parse_volume(std::string_view flag, std::string_view text) {
    const auto parts = split(text, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty())
        bad_value(flag, "'" + std::string(text) + "' is not SRC:DST[:ro|rw]");
    volume v{std::string(parts[0]), std::string(parts[1])};
    // Docker reads a relative source as a named volume, which ctr-run does not have.
    require_absolute(flag, v.source, "the source");
    require_absolute(flag, v.target, "the destination");
    if (parts.size() == 3) {
        for (auto option : split(parts[2], ',')) {
            if (option == "ro") v.read_only = true;
            else if (option == "rw") v.read_only = false;
            else bad_value(flag, "unknown volume option '" + std::string(option) + "' (ro or rw)");
        }
    }
    return v;
}

inline tmpfs_mount parse_tmpfs(std::string_view flag, std::string_view text) {
    const auto colon = text.find(':');
    tmpfs_mount t{std::string(text.substr(0, colon)), {.mode = 01777}};
    require_absolute(flag, t.target, "the destination");
    if (colon == std::string_view::npos) return t;
    for (auto option : split(text.substr(colon + 1), ',')) {
        if (option.starts_with("size=")) {
            // Docker's sizes, handed to tmpfs in bytes; "%" is tmpfs's own.
            const auto size = option.substr(5);
            if (size.ends_with('%')) {
                const auto percent = size.substr(0, size.size() - 1);
                if (percent.empty() || percent.find_first_not_of("0123456789") != std::string_view::npos)
                    bad_value(flag, "size '" + std::string(size) + "' is not a size or a percentage (64m, 50%)");
            }
            t.options.size = size.ends_with('%') ? std::string(size) : std::to_string(parse_size(flag, size));
        } else if (option.starts_with("mode=")) {
            const auto mode = option.substr(5);
            unsigned value = 0;
            const auto [ptr, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), value, 8);
            if (ec != std::errc() || ptr != mode.data() + mode.size() || mode.empty() || value > 07777)
                bad_value(flag, "mode '" + std::string(mode) + "' is not an octal mode");
            t.options.mode = value;
        } else if (option == "ro") t.options.read_only = true;
        else if (option == "rw") t.options.read_only = false;
        else if (option == "noexec") t.options.noexec = true;
        else if (option == "exec") t.options.noexec = false;
        else if (option == "nosuid") t.options.nosuid = true;
        else if (option == "suid") t.options.nosuid = false;
        else if (option == "nodev") t.options.nodev = true;
        else if (option == "dev") t.options.nodev = false;
        else bad_value(flag, "unknown tmpfs option '" + std::string(option) +
                                 "' (size=, mode=, ro, rw, noexec, exec, nosuid, suid, nodev, dev)");
    }
    return t;
}

}  // namespace ctr_run
