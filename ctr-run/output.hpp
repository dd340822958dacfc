#pragma once
// ctr-run's output: exit statuses, sizes for messages, and the JSON result
// (--result json).

#include <ctr/error.hpp>
#include <ctr/spawn_options.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace ctr_run {

// Exit statuses, as Docker and Podman use them (and `timeout` for 124).
constexpr int exit_timed_out = 124;
constexpr int exit_runtime_failed = 125;
constexpr int exit_cannot_execute = 126;
constexpr int exit_not_found = 127;

// The flags, their values and the usage text: ctr-run/flags.hpp.
using namespace ctr_run;

inline std::string format_bytes(std::uint64_t bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    std::ostringstream out;
    if (unit == 0 || value == std::floor(value)) out << static_cast<std::uint64_t>(value) << ' ' << units[unit];
    else out << std::fixed << std::setprecision(1) << value << ' ' << units[unit];
    return out.str();
}


// ---- the result --------------------------------------------------------------

inline std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else out += c;
    }
    return out + "\"";
}

template <typename T>
inline std::string json_or_null(const std::optional<T>& value) {
    if (!value) return "null";
    std::ostringstream out;
    out << *value;
    return out.str();
}

inline std::string milliseconds(std::chrono::nanoseconds d) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(3) << static_cast<double>(d.count()) / 1e6;
    return out.str();
}

inline void print_json(const ctr::process::result* r, const std::string& error) {
    std::ostringstream out;
    if (r) {
        out << "{\"exit_code\":" << json_or_null(r->exit_code) << ",\"signal\":" << json_or_null(r->signal)
            << ",\"timed_out\":" << (r->timed_out ? "true" : "false")
            << ",\"oom_killed\":" << (r->oom_killed ? "true" : "false") << ",\"wall_ms\":" << milliseconds(r->wall_time)
            << ",\"user_ms\":" << milliseconds(r->user_time) << ",\"sys_ms\":" << milliseconds(r->system_time)
            << ",\"memory_peak_bytes\":" << json_or_null(r->memory_peak_bytes) << "}";
    } else {
        out << "{\"exit_code\":null,\"signal\":null,\"timed_out\":false,\"oom_killed\":false,\"wall_ms\":null,"
               "\"user_ms\":null,\"sys_ms\":null,\"memory_peak_bytes\":null,\"error\":"
            << json_string(error) << "}";
    }
    std::cerr << out.str() << std::endl;
}

// 126 and 127 as shells use them; 125 for every other failure before exec.
inline int exit_status_for(const ctr::error& e) {
    if (e.step() != ctr::step::exec) return exit_runtime_failed;
    const int code = e.code().value();
    if (code == ENOENT || code == ENOTDIR) return exit_not_found;
    return exit_cannot_execute;
}

}  // namespace ctr_run
