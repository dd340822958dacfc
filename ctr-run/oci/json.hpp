#pragma once
// Typed access to the fields of an OCI JSON document (config.json, an exec
// process.json, a seccomp profile). Each accessor takes the field's path as
// the user would write it ("linux.resources.memory.limit",
// "mounts[3].options[1]") and throws config_error naming that path, what was
// wrong and how to fix it:
//   linux.resources.memory.limit: expected an integer, got "abc"
// Only ctr-run uses nlohmann/json; the library has no JSON in it.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ctr_run::oci {

// A config the runtime cannot run as written. The message is
// "<field path>: <what>, <fix>".
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

namespace json_field {

using json = nlohmann::json;

[[noreturn]] inline void fail(std::string_view path, std::string_view what) {
    std::string message(path);
    message += ": ";
    message += what;
    throw config_error(message);
}

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
inline std::string member(std::string_view path, std::string_view key) {
    std::string out(path);
    if (!out.empty()) out += '.';
    out += key;
    return out;
}

inline std::string element(std::string_view path, std::size_t index) {
    return std::string(path) + "[" + std::to_string(index) + "]";
}

// What a value is, for "got ..." in a message: short, never the whole value.
inline std::string describe(const json& value) {
    switch (value.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return value.get<bool>() ? "true" : "false";
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: {
            std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
            if (text.size() > 40) text = text.substr(0, 37) + "...\"";
            return text;
        }
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
        case json::value_t::number_float: return value.dump();
        default: return "a value of another kind";
    }
}

[[noreturn]] inline void wrong_type(std::string_view path, std::string_view expected, const json& got) {
    fail(path, "expected " + std::string(expected) + ", got " + describe(got));
}

inline const json& object(const json& value, std::string_view path) {
    if (!value.is_object()) wrong_type(path, "an object", value);
    return value;
}

inline const json& array(const json& value, std::string_view path) {
    if (!value.is_array()) wrong_type(path, "an array", value);
    return value;
}

// The member `key` of an object, or null when it is absent. A member whose
// value is JSON null counts as absent, as the spec's Go types read it.
inline const json* find(const json& object_value, std::string_view key) {
    const auto it = object_value.find(key);
    if (it == object_value.end() || it->is_null()) return nullptr;
    return &*it;
}

inline std::string string(const json& value, std::string_view path) {
    if (!value.is_string()) wrong_type(path, "a string", value);
    return value.get<std::string>();
}

inline bool boolean(const json& value, std::string_view path) {
    if (!value.is_boolean()) wrong_type(path, "true or false", value);
    return value.get<bool>();
}

// An integer in [low, high]. JSON numbers with a fraction or an exponent
// that is not whole are refused; so are numbers past 64 bits.
template <class Int>
Int integer(const json& value, std::string_view path, Int low = std::numeric_limits<Int>::min(),
            Int high = std::numeric_limits<Int>::max()) {
    const auto out_of_range = [&]() {
        fail(path, "expected an integer from " + std::to_string(low) + " to " + std::to_string(high) + ", got " +
                       describe(value));
    };
    // nlohmann/json reads a number without sign, fraction or exponent as
    // unsigned, and a negative one as signed.
    if (value.is_number_unsigned()) {
        const auto v = value.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(high)) out_of_range();  // every caller's high is >= 0
        if (low > 0 && v < static_cast<std::uint64_t>(low)) out_of_range();
        return static_cast<Int>(v);
    }
    if (value.is_number_integer()) {
        const auto v = value.get<std::int64_t>();
        if constexpr (std::is_signed_v<Int>) {
            if (v < static_cast<std::int64_t>(low) || v > static_cast<std::int64_t>(high)) out_of_range();
            return static_cast<Int>(v);
        } else {
            out_of_range();
        }
    }
    wrong_type(path, "an integer", value);
}

inline std::vector<std::string> strings(const json& value, std::string_view path) {
    array(value, path);
    std::vector<std::string> out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) out.push_back(string(value[i], element(path, i)));
    return out;
}

// Optional members: nothing when absent (or null).
inline std::optional<std::string> optional_string(const json& object_value, std::string_view key,
                                                  std::string_view path) {
    const json* v = find(object_value, key);
    if (!v) return std::nullopt;
    return string(*v, member(path, key));
}

inline std::optional<bool> optional_boolean(const json& object_value, std::string_view key, std::string_view path) {
    const json* v = find(object_value, key);
    if (!v) return std::nullopt;
    return boolean(*v, member(path, key));
}

template <class Int>
std::optional<Int> optional_integer(const json& object_value, std::string_view key, std::string_view path,
                                    Int low = std::numeric_limits<Int>::min(),
                                    Int high = std::numeric_limits<Int>::max()) {
    const json* v = find(object_value, key);
    if (!v) return std::nullopt;
    return integer<Int>(*v, member(path, key), low, high);
}

}  // namespace json_field
}  // namespace ctr_run::oci
