#pragma once
// Seccomp profiles written as JSON, in the two shapes container tools use:
//   - the OCI runtime-spec's linux.seccomp object (config.json): defaultAction,
//     defaultErrnoRet, architectures, flags, listenerPath, and syscalls with
//     names, action, errnoRet and args;
//   - Docker's and Podman's profile files (moby's default.json,
//     /usr/share/containers/seccomp.json): the same fields, with archMap in
//     place of architectures, and includes/excludes on each entry (capabilities,
//     architectures, a minimum kernel) that decide whether the entry applies.
// One reader takes both, since the second is the first plus fields. What is
// translated, skipped and refused: docs/oci.md, "Seccomp profiles in JSON".

#include <ctr/capabilities.hpp>
#include <ctr/seccomp.hpp>

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ctr_run::oci {

// A kernel release, as far as minKernel compares it: "5.15" or "6.8.0-45".
struct kernel_version {
    unsigned major = 0;
    unsigned minor = 0;
    friend constexpr auto operator<=>(const kernel_version&, const kernel_version&) noexcept = default;
};

// "6.8.0-45-generic" -> 6.8; nothing when the text does not start with
// MAJOR.MINOR.
std::optional<kernel_version> parse_kernel_version(std::string_view text);
// The running kernel's (uname), or 0.0 if uname answers something else.
kernel_version running_kernel_version();

// What an entry's includes/excludes are checked against.
struct seccomp_context {
    // The capabilities the container keeps (its bounding set, as Docker
    // checks): includes.caps needs every one it names, excludes.caps drops
    // the entry when it holds any.
    ctr::caps::set capabilities;
    // For minKernel; empty: the running kernel's.
    std::optional<kernel_version> kernel;
    // When set, receives the names the x86-64 table does not know (i386-only
    // calls such as chown32, calls newer than the table, misspellings), which
    // are skipped as Docker and runc skip names libseccomp does not know.
    std::vector<std::string>* skipped_names = nullptr;
};

// A profile that cannot be translated: the message names where (the file or
// "linux.seccomp"), the entry and the field, and why:
//   "seccomp.json: syscalls[12].action: unknown action 'SCMP_ACT_FOO'".
struct seccomp_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Translates a profile in either format into a filter. `where` starts every
// message: "linux.seccomp" gives "linux.seccomp.syscalls[3].action: ...", a
// prefix ending in ':' ("profile.json:") gives "profile.json: syscalls[3]...".
// Throws seccomp_error; never another exception for bad input.
std::shared_ptr<const ctr::seccomp::filter> seccomp_from_json(const nlohmann::json& profile,
                                                              const seccomp_context& context,
                                                              std::string_view where);

// Reads and translates a profile file (Docker's format, or a bare
// linux.seccomp object). Throws seccomp_error naming the file when it cannot
// be read, is not JSON, or cannot be translated.
std::shared_ptr<const ctr::seccomp::filter> load_seccomp_profile(const std::filesystem::path& file,
                                                                 const seccomp_context& context);

}  // namespace ctr_run::oci
