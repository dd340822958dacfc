// JSON seccomp profiles (OCI linux.seccomp and Docker's profile files) into
// ctr::seccomp filters. The semantics follow runc and moby, from their
// documentation; docs/oci.md, "Seccomp profiles in JSON" lists them and where ctr differs.
#include "oci/seccomp_profile.hpp"

#include <nlohmann/json.hpp>

#include <linux/seccomp.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <utility>

namespace ctr_run::oci {

namespace {

namespace sc = ctr::seccomp;
namespace table = ctr::detail::syscall_table_x86_64;
using json = nlohmann::json;

// `at` is where in the profile: "linux.seccomp.syscalls[3].action", or with
// a file's name, "profile.json: syscalls[3].action" (the prefix ends in ':').
[[noreturn]] void fail(const std::string& at, const std::string& why) {
    throw seccomp_error(at + (at.ends_with(':') ? " " : ": ") + why);
}

// The member `name` of the thing at `at`.
std::string sub(const std::string& at, std::string_view name) {
    return at + (at.ends_with(':') ? " " : ".") + std::string(name);
}

// A value as it appears in the file, shortened for a message.
std::string shown(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return text;
}

// The member `key`, or nothing when it is absent or null (Go's decoder,
// which Docker and runc use, treats null as absent).
const json* member(const json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string as_string(const json& value, const std::string& at) {
    if (!value.is_string()) fail(at, "is not a string: " + shown(value));
    return value.get<std::string>();
}

std::uint64_t as_unsigned(const json& value, const std::string& at) {
    if (!value.is_number_unsigned()) fail(at, "is not an unsigned 64-bit integer: " + shown(value));
    return value.get<std::uint64_t>();
}

const json& as_array(const json& value, const std::string& at) {
    if (!value.is_array()) fail(at, "is not an array: " + shown(value));
    return value;
}

const json& as_object(const json& value, const std::string& at) {
    if (!value.is_object()) fail(at, "is not an object: " + shown(value));
    return value;
}

std::vector<std::string> string_list(const json& value, const std::string& at) {
    std::vector<std::string> out;
    std::size_t i = 0;
    for (const json& item : as_array(value, at)) out.push_back(as_string(item, at + "[" + std::to_string(i++) + "]"));
    return out;
}

// --- actions -----------------------------------------------------------------

enum class action_name { allow, errno_, kill_thread, kill_process, trap, log };

action_name parse_action(const json& value, const std::string& at) {
    const std::string name = as_string(value, at);
    if (name == "SCMP_ACT_ALLOW") return action_name::allow;
    if (name == "SCMP_ACT_ERRNO") return action_name::errno_;
    // libseccomp's SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD.
    if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return action_name::kill_thread;
    if (name == "SCMP_ACT_KILL_PROCESS") return action_name::kill_process;
    if (name == "SCMP_ACT_TRAP") return action_name::trap;
    if (name == "SCMP_ACT_LOG") return action_name::log;
    if (name == "SCMP_ACT_TRACE")
        fail(at, "SCMP_ACT_TRACE hands the call to a ptrace tracer, and ctr attaches none (without one the "
                 "kernel fails the call with ENOSYS); use SCMP_ACT_ERRNO with errnoRet 38 for that");
    if (name == "SCMP_ACT_NOTIFY")
        fail(at, "SCMP_ACT_NOTIFY needs a seccomp listener (listenerPath), which ctr does not support");
    fail(at, "unknown action '" + name +
                 "' (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, "
                 "SCMP_ACT_TRAP or SCMP_ACT_LOG)");
}

// errnoRet / defaultErrnoRet: the errno a refused call returns.
int parse_errno(const json& value, const std::string& at) {
    const std::uint64_t n = as_unsigned(value, at);
    if (n == 0)
        fail(at, "0 would make the call return 0 without running it; ctr takes an errno in 1..4095");
    if (n > 4095) fail(at, std::to_string(n) + " is not an errno (1..4095)");
    return static_cast<int>(n);
}

sc::action make_action(action_name name, int errno_value) {
    switch (name) {
        case action_name::allow: return sc::action::allow();
        case action_name::errno_: return sc::action::fail_with(errno_value);
        case action_name::kill_thread: return sc::action::kill_thread();
        case action_name::kill_process: return sc::action::kill_process();
        case action_name::trap: return sc::action::trap();
        case action_name::log: return sc::action::log();
    }
    return sc::action::kill_process();
}

// --- architectures -----------------------------------------------------------

// libseccomp's architecture names. Only x86-64 runs here; the others are
// accepted (a profile for several machines lists them) and have no effect.
constexpr std::string_view architecture_names[] = {
    "SCMP_ARCH_X86",       "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",   "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",      "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};

std::string parse_architecture(const json& value, const std::string& at) {
    std::string name = as_string(value, at);
    if (std::find(std::begin(architecture_names), std::end(architecture_names), name) == std::end(architecture_names))
        fail(at, "unknown architecture '" + name + "' (SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, ...)");
    return name;
}

// Checks architectures or archMap. Whatever they list, the filter checks
// x86-64 calls by its rules and kills the process on an i386 (int 0x80) or
// x32 call: ctr's table has only x86-64 numbers, so the rules cannot be
// translated to those ABIs (docs/oci.md, "Seccomp profiles in JSON").
void check_architectures(const json& profile, const std::string& where) {
    const json* list = member(profile, "architectures");
    const json* map = member(profile, "archMap");
    if (list && map)
        fail(where, "both architectures and archMap are set; a profile uses one of them, as Docker requires");
    if (list) {
        std::size_t i = 0;
        for (const json& item : as_array(*list, sub(where, "architectures")))
            parse_architecture(item, sub(where, "architectures[") + std::to_string(i++) + "]");
    }
    if (map) {
        std::size_t i = 0;
        for (const json& entry : as_array(*map, sub(where, "archMap"))) {
            const std::string at = sub(where, "archMap[") + std::to_string(i++) + "]";
            as_object(entry, at);
            const json* arch = member(entry, "architecture");
            if (!arch) fail(at, "has no architecture");
            parse_architecture(*arch, sub(at, "architecture"));
            if (const json* subs = member(entry, "subArchitectures")) {
                std::size_t j = 0;
                for (const json& child : as_array(*subs, sub(at, "subArchitectures")))
                    parse_architecture(child, sub(at, "subArchitectures[") + std::to_string(j++) + "]");
            }
        }
    }
}

// --- flags -------------------------------------------------------------------

std::uint32_t parse_flags(const json& value, const std::string& at) {
    std::uint32_t flags = 0;
    std::size_t i = 0;
    for (const json& item : as_array(value, at)) {
        const std::string item_at = at + "[" + std::to_string(i++) + "]";
        const std::string name = as_string(item, item_at);
        if (name == "SECCOMP_FILTER_FLAG_LOG") flags |= SECCOMP_FILTER_FLAG_LOG;
        else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        else if (name == "SECCOMP_FILTER_FLAG_TSYNC" || name == "SECCOMP_FILTER_FLAG_NEW_LISTENER" ||
                 name == "SECCOMP_FILTER_FLAG_TSYNC_ESRCH" || name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
            fail(item_at, name + " is not supported (ctr installs the filter in a single-threaded child and has no "
                                 "listener); SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW are");
        else
            fail(item_at, "unknown flag '" + name +
                              "' (SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW)");
    }
    return flags;
}

// --- arguments -----------------------------------------------------------------

sc::condition parse_arg(const json& value, const std::string& at) {
    as_object(value, at);
    sc::condition c;
    // Go's decoder gives an absent index, value or valueTwo 0; op has no
    // such default.
    const json* index = member(value, "index");
    const std::uint64_t i = index ? as_unsigned(*index, sub(at, "index")) : 0;
    if (i > 5) fail(sub(at, "index"), std::to_string(i) + " is not an argument (0..5)");
    c.index = static_cast<unsigned>(i);
    const json* first = member(value, "value");
    const json* second = member(value, "valueTwo");
    const std::uint64_t v = first ? as_unsigned(*first, sub(at, "value")) : 0;
    const std::uint64_t v2 = second ? as_unsigned(*second, sub(at, "valueTwo")) : 0;
    const json* op = member(value, "op");
    if (!op) fail(at, "has no op");
    const std::string name = as_string(*op, sub(at, "op"));
    c.value = v;
    if (name == "SCMP_CMP_EQ") c.op = sc::compare::equal;
    else if (name == "SCMP_CMP_NE") c.op = sc::compare::not_equal;
    else if (name == "SCMP_CMP_LT") c.op = sc::compare::less;
    else if (name == "SCMP_CMP_LE") c.op = sc::compare::less_equal;
    else if (name == "SCMP_CMP_GE") c.op = sc::compare::greater_equal;
    else if (name == "SCMP_CMP_GT") c.op = sc::compare::greater;
    else if (name == "SCMP_CMP_MASKED_EQ") {
        // libseccomp's order: value is the mask, valueTwo what the masked
        // argument must equal.
        if ((v2 & ~v) != 0)
            fail(at, "valueTwo has bits outside the mask in value, so (arg & value) == valueTwo could never hold");
        c.op = sc::compare::masked_equal;
        c.mask = v;
        c.value = v2;
    } else
        fail(sub(at, "op"), "unknown operator '" + name +
                             "' (SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GE, SCMP_CMP_GT or "
                             "SCMP_CMP_MASKED_EQ)");
    return c;
}

// --- includes and excludes ---------------------------------------------------------

// The architecture names includes/excludes use are Go's (libseccomp-golang's
// String()): this machine is "amd64".
constexpr std::string_view native_arch = "amd64";

struct applies_to {
    std::vector<std::string> caps, arches;
    std::optional<kernel_version> min_kernel;
};

applies_to parse_filter(const json& value, const std::string& at) {
    as_object(value, at);
    applies_to f;
    if (const json* caps = member(value, "caps")) f.caps = string_list(*caps, sub(at, "caps"));
    if (const json* arches = member(value, "arches")) f.arches = string_list(*arches, sub(at, "arches"));
    if (const json* min = member(value, "minKernel")) {
        const std::string text = as_string(*min, sub(at, "minKernel"));
        f.min_kernel = parse_kernel_version(text);
        if (!f.min_kernel) fail(sub(at, "minKernel"), "'" + text + "' is not a kernel version (MAJOR.MINOR)");
    }
    return f;
}

bool holds_cap(const ctr::caps::set& held, const std::string& name) {
    // A name ctr does not know is a capability the container does not hold,
    // as Docker's string comparison would find.
    const auto c = ctr::caps::from_name(name);
    return c && held.has(*c);
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

// Docker's order: an exclude that matches drops the entry, then every
// include must match.
bool entry_applies(const applies_to& includes, const applies_to& excludes, const seccomp_context& context,
                   kernel_version kernel) {
    if (contains(excludes.arches, native_arch)) return false;
    for (const std::string& cap : excludes.caps)
        if (holds_cap(context.capabilities, cap)) return false;
    if (excludes.min_kernel && kernel >= *excludes.min_kernel) return false;
    if (!includes.arches.empty() && !contains(includes.arches, native_arch)) return false;
    for (const std::string& cap : includes.caps)
        if (!holds_cap(context.capabilities, cap)) return false;
    if (includes.min_kernel && kernel < *includes.min_kernel) return false;
    return true;
}

// --- rules ---------------------------------------------------------------------

struct conditional_rule {
    int number;
    sc::action what;
    std::vector<sc::condition> all_of;
};


}  // namespace

std::optional<kernel_version> parse_kernel_version(std::string_view text) {
    const auto number = [&](unsigned& out) {
        if (text.empty() || text.front() < '0' || text.front() > '9') return false;
        std::uint64_t n = 0;
        while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
            n = n * 10 + static_cast<std::uint64_t>(text.front() - '0');
            if (n > 1000000) return false;
            text.remove_prefix(1);
        }
        out = static_cast<unsigned>(n);
        return true;
    };
    kernel_version v;
    if (!number(v.major) || text.empty() || text.front() != '.') return std::nullopt;
    text.remove_prefix(1);
    if (!number(v.minor)) return std::nullopt;
    return v;
}

kernel_version running_kernel_version() {
    utsname name{};
    if (uname(&name) != 0) return {};
    return parse_kernel_version(name.release).value_or(kernel_version{});
}

std::shared_ptr<const ctr::seccomp::filter> seccomp_from_json(const nlohmann::json& profile,
                                                              const seccomp_context& context,
                                                              std::string_view where_view) {
    const std::string where(where_view);
    if (!profile.is_object()) fail(where, "is not an object: " + shown(profile));

    const json* default_json = member(profile, "defaultAction");
    if (!default_json) fail(where, "has no defaultAction");
    const action_name default_name = parse_action(*default_json, sub(where, "defaultAction"));
    int default_errno = EPERM;
    if (const json* e = member(profile, "defaultErrnoRet")) {
        if (default_name != action_name::errno_)
            fail(sub(where, "defaultErrnoRet"), "is only meaningful with defaultAction SCMP_ACT_ERRNO");
        default_errno = parse_errno(*e, sub(where, "defaultErrnoRet"));
    }
    const sc::action default_action = make_action(default_name, default_errno);

    check_architectures(profile, where);
    std::uint32_t flags = 0;
    if (const json* f = member(profile, "flags")) flags = parse_flags(*f, sub(where, "flags"));
    if (const json* listener = member(profile, "listenerPath"))
        if (!as_string(*listener, sub(where, "listenerPath")).empty())
            fail(sub(where, "listenerPath"), "ctr does not support seccomp listeners (SCMP_ACT_NOTIFY)");

    const kernel_version kernel = context.kernel ? *context.kernel : running_kernel_version();
    std::vector<conditional_rule> conditional;
    std::map<int, sc::action> plain;
    std::set<std::string> skipped;

    if (const json* syscalls = member(profile, "syscalls")) {
        std::size_t index = 0;
        for (const json& entry : as_array(*syscalls, sub(where, "syscalls"))) {
            const std::string at = sub(where, "syscalls[") + std::to_string(index++) + "]";
            as_object(entry, at);

            // Every entry is checked, whether or not it applies here.
            std::vector<std::string> names;
            const json* names_json = member(entry, "names");
            const json* name_json = member(entry, "name");  // Docker's older spelling
            if (names_json && name_json) fail(at, "has both name and names; use names");
            if (names_json) names = string_list(*names_json, sub(at, "names"));
            else if (name_json) names.push_back(as_string(*name_json, sub(at, "name")));
            if (names.empty()) fail(at, "names no system call (names is missing or empty)");
            for (std::size_t i = 0; i < names.size(); ++i)
                if (names[i].empty()) fail(sub(at, "names[") + std::to_string(i) + "]", "is empty");

            const json* action_json = member(entry, "action");
            if (!action_json) fail(at, "has no action");
            const action_name name = parse_action(*action_json, sub(at, "action"));
            // The runtime spec: an ERRNO entry without errnoRet returns EPERM
            // (defaultErrnoRet is for defaultAction alone).
            int errno_value = EPERM;
            if (const json* e = member(entry, "errnoRet")) {
                if (name != action_name::errno_)
                    fail(sub(at, "errnoRet"), "is only meaningful with SCMP_ACT_ERRNO");
                errno_value = parse_errno(*e, sub(at, "errnoRet"));
            }
            const sc::action what = make_action(name, errno_value);

            std::vector<sc::condition> all_of;
            if (const json* args = member(entry, "args")) {
                std::size_t i = 0;
                for (const json& arg : as_array(*args, sub(at, "args")))
                    all_of.push_back(parse_arg(arg, sub(at, "args[") + std::to_string(i++) + "]"));
            }
            applies_to includes, excludes;
            if (const json* in = member(entry, "includes")) includes = parse_filter(*in, sub(at, "includes"));
            if (const json* ex = member(entry, "excludes")) excludes = parse_filter(*ex, sub(at, "excludes"));
            if (!entry_applies(includes, excludes, context, kernel)) continue;

            for (const std::string& call : names) {
                const int number = table::name_to_number(call);
                if (number < 0) {
                    skipped.insert(call);
                    continue;
                }
                // A rule with the default action changes nothing in
                // libseccomp's filters and runc leaves it out; left in here,
                // it would come first and shadow a later rule of the call.
                if (what == default_action) continue;
                if (!all_of.empty()) {
                    conditional.push_back({number, what, all_of});
                    continue;
                }
                // The first entry that rules a call without conditions
                // decides it; libseccomp keeps the first such rule too.
                // Podman's profile relies on that: setns, bpf and others are
                // in its allow list and again in a refusal for containers
                // without CAP_SYS_ADMIN, which therefore never applies.
                plain.try_emplace(number, what);
            }
        }
    }

    sc::builder b;
    b.default_action(default_action).install_flags(flags);
    // A call the table does not know (newer than it) gets ENOSYS, so that
    // libc falls back to an older call, as runc's filters do; under a profile
    // that allows by default, it is allowed like every unnamed call.
    if (default_name == action_name::allow || default_name == action_name::log)
        b.unknown_syscall_action(default_action);
    // Conditional rules of a call come first, in the file's order, and its
    // plain rule last: the first rule whose conditions hold decides, and the
    // plain one decides what none of them matched. (libseccomp merges
    // overlapping rules of a call into a tree instead; the profiles Docker
    // and Podman ship never give one call both kinds in the same run.)
    for (const conditional_rule& r : conditional)
        b.rule(r.number, r.what, std::span<const sc::condition>(r.all_of));
    for (const auto& [number, what] : plain) b.rule(number, what);
    if (context.skipped_names) context.skipped_names->assign(skipped.begin(), skipped.end());
    try {
        return b.build_shared();
    } catch (const ctr::error& e) {
        fail(where, e.what());
    }
}

std::shared_ptr<const ctr::seccomp::filter> load_seccomp_profile(const std::filesystem::path& file,
                                                                 const seccomp_context& context) {
    const std::string where = file.string() + ":";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        fail(where, ec ? "cannot read it: " + ec.message() : "is not a regular file");
    // Podman's profile is 16 KiB, Docker's 20; a file far beyond that is
    // something else.
    constexpr std::uintmax_t largest = 16 << 20;
    if (std::filesystem::file_size(file, ec) > largest && !ec)
        fail(where, "is larger than 16 MiB; a seccomp profile is a few KiB");
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(where, std::string("cannot read it: ") + std::strerror(errno));
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) fail(where, std::string("cannot read it: ") + std::strerror(errno));
    json profile;
    try {
        profile = json::parse(text);
    } catch (const json::exception& e) {
        fail(where, std::string("is not JSON: ") + e.what());
    }
    return seccomp_from_json(profile, context, where);
}

}  // namespace ctr_run::oci
