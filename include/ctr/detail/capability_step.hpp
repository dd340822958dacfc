#pragma once
// The capability steps of a launch: planned in the parent from a
// caps::policy, run in the child as child_op_code::call operations.
//
// The order, and why:
//   1. drop_bounding_capabilities  PR_CAPBSET_DROP needs CAP_SETPCAP in the
//      effective set, so it goes first, while the child still has the
//      launcher's capabilities. The bounding set also limits what a later
//      exec can gain, and what capset may put into the inheritable set.
//   2. set_securebits              PR_SET_SECUREBITS needs CAP_SETPCAP too.
//      It comes before the change of ids so that SECBIT_NO_SETUID_FIXUP and
//      SECBIT_KEEP_CAPS shape what setresuid does.
//   3. keep_capabilities(1)        only when a change of uid follows: going
//      from uid 0 to another uid empties the permitted set unless keepcaps is
//      on. The kernel turns keepcaps off again at exec.
//   4. setgroups, setgid, setuid   (the launch's own steps) need CAP_SETGID
//      and CAP_SETUID, which `keep` need not hold: that is why the sets are
//      only lowered after them. Leaving uid 0 also empties the effective and
//      ambient sets.
//   5. set_capabilities            capset: permitted = effective = keep,
//      inheritable = inheritable | ambient. Lowering needs no capability;
//      it also brings back the effective set that setuid emptied.
//   6. set_ambient_capabilities    the kernel raises an ambient capability
//      only while it is both permitted and inheritable, and lowering either
//      set (step 5) or leaving uid 0 (step 4) clears ambient ones; so last.
// Exec then applies the kernel's rules: uid 0 (without SECBIT_NOROOT) gets
// the bounding set again, any other uid only its ambient capabilities.

#include <ctr/capabilities.hpp>
#include <ctr/detail/child_program.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace ctr::detail {

// What the child reads: bit N of each mask is capability number N.
struct capability_plan {
    std::uint64_t keep = 0;         // bounding, permitted, effective
    std::uint64_t inheritable = 0;  // already includes ambient
    std::uint64_t ambient = 0;
    bool set_securebits = false;
    unsigned securebits = 0;
};

// "CAP_BPF", or "capability 45" for a number this header has no name for.
template <class = void>
inline std::string describe_capability(unsigned number) {
    const std::string_view known = caps::name(static_cast<capability>(number));
    return known.empty() ? "capability " + std::to_string(number) : std::string(known);
}

// Checks a policy and turns it into plain data for the child. `last_cap` is
// the running kernel's last capability (caps::last_supported()); a
// capability past it, an ambient or inheritable one that is not kept, or
// securebits the kernel cannot take throw ctr::error(step::prepare, EINVAL)
// naming what is wrong. Parent side.
template <class = void>
inline capability_plan plan_capabilities(const caps::policy& policy, unsigned last_cap = caps::last_supported()) {
    const auto invalid = [](std::string what, std::string why) {
        return error(step::prepare, EINVAL, std::move(what), why);
    };
    const caps::set mentioned = policy.keep | policy.inheritable | policy.ambient;
    for (const capability c : mentioned) {
        if (static_cast<unsigned>(c) > last_cap)
            throw invalid(describe_capability(static_cast<unsigned>(c)),
                          describe_capability(static_cast<unsigned>(c)) + " is not known to this kernel (its last is " +
                              describe_capability(last_cap) + ")");
    }
    if (const caps::set extra = policy.ambient - policy.keep; !extra.empty())
        throw invalid(extra.to_string(),
                      "ambient capabilities must also be kept: the kernel raises an ambient capability only while it "
                      "is permitted and inheritable");
    if (const caps::set extra = policy.inheritable - policy.keep; !extra.empty())
        throw invalid(extra.to_string(),
                      "inheritable capabilities must also be kept: the kernel refuses an inheritable capability "
                      "outside the bounding set");
    capability_plan plan;
    plan.keep = policy.keep.bits();
    plan.inheritable = (policy.inheritable | policy.ambient).bits();
    plan.ambient = policy.ambient.bits();
    if (policy.securebits) {
        const unsigned bits = *policy.securebits;
        constexpr unsigned known = SECURE_ALL_BITS | SECURE_ALL_LOCKS;
        if ((bits & ~known) != 0)
            throw invalid("securebits " + std::to_string(bits),
                          "unknown securebits: use the SECBIT_* flags of linux/securebits.h");
        if ((bits & SECBIT_NO_CAP_AMBIENT_RAISE) != 0 && !policy.ambient.empty())
            throw invalid(policy.ambient.to_string(),
                          "ambient capabilities cannot be raised under SECBIT_NO_CAP_AMBIENT_RAISE");
        plan.set_securebits = true;
        plan.securebits = bits;
    }
    return plan;
}

// PR_CAPBSET_DROP of every capability not in plan.keep, 0 to 63; the first
// number the kernel does not know (EINVAL) ends the walk. A capability that
// is already out of the bounding set is left alone, so a launcher without
// CAP_SETPCAP can still run a policy that drops nothing new.
// op.data = const capability_plan*. Async-signal-safe.
CTR_CHILD_CODE inline long child_drop_bounding_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    for (unsigned long number = 0; number <= caps::max_number; ++number) {
        if ((plan->keep >> number & 1) != 0) continue;
        long r = sys::prctl(PR_CAPBSET_READ, number);
        if (r == -EINVAL) break;
        if (r < 0) return r;
        if (r == 0) continue;
        r = sys::prctl(PR_CAPBSET_DROP, number);
        if (r == -EINVAL) break;
        if (r < 0) return r;
    }
    return 0;
}

// PR_SET_SECUREBITS to plan.securebits, when plan.set_securebits.
// op.data = const capability_plan*. Async-signal-safe.
CTR_CHILD_CODE inline long child_set_securebits(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    if (!plan->set_securebits) return 0;
    const long r = sys::prctl(PR_SET_SECUREBITS, plan->securebits);
    return r < 0 ? r : 0;
}

// PR_SET_KEEPCAPS to op.a (1 before a change of uid). Async-signal-safe.
CTR_CHILD_CODE inline long child_keep_capabilities(const child_op& op) noexcept {
    const long r = sys::prctl(PR_SET_KEEPCAPS, static_cast<unsigned long>(op.a));
    return r < 0 ? r : 0;
}

// capset (version 3, this process): permitted = effective = plan.keep,
// inheritable = plan.inheritable. op.data = const capability_plan*.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    for (unsigned word = 0; word < _LINUX_CAPABILITY_U32S_3; ++word) {
        const unsigned shift = 32 * word;
        data[word].effective = static_cast<std::uint32_t>(plan->keep >> shift);
        data[word].permitted = static_cast<std::uint32_t>(plan->keep >> shift);
        data[word].inheritable = static_cast<std::uint32_t>(plan->inheritable >> shift);
    }
    const long r = sys::capset(&header, data);
    return r < 0 ? r : 0;
}

// Empties the ambient set, then raises each capability of plan.ambient. A
// kernel without ambient capabilities (before 4.3) answers EINVAL, which is
// fine only when there is nothing to raise. op.data = const capability_plan*.
// Async-signal-safe.
CTR_CHILD_CODE inline long child_set_ambient_capabilities(const child_op& op) noexcept {
    const auto* plan = static_cast<const capability_plan*>(op.data);
    if (!plan) return -EINVAL;
    const long cleared = sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
    if (cleared == -EINVAL && plan->ambient == 0) return 0;
    if (cleared < 0) return cleared;
    for (unsigned long number = 0; number <= caps::max_number; ++number) {
        if ((plan->ambient >> number & 1) == 0) continue;
        const long r = sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number);
        if (r < 0) return r;
    }
    return 0;
}

// The operations of steps 1-3 above, for a launch to put before its own
// setgroups/setgid/setuid; `changes_uid` says whether a setuid follows.
// The plan must outlive the child's exec. Parent side.
template <class = void>
inline void add_capability_steps_before_ids(std::vector<child_op>& ops, const capability_plan& plan,
                                            bool changes_uid) {
    ops.push_back({.code = child_op_code::call,
                   .step = step::drop_bounding_capabilities,
                   .data = &plan,
                   .run = &child_drop_bounding_capabilities});
    if (plan.set_securebits)
        ops.push_back({.code = child_op_code::call,
                       .step = step::set_securebits,
                       .data = &plan,
                       .run = &child_set_securebits});
    // With SECBIT_KEEP_CAPS_LOCKED the caller fixed keepcaps already (the
    // kernel refuses PR_SET_KEEPCAPS then); with SECBIT_NO_SETUID_FIXUP the
    // change of uid leaves the sets alone.
    const bool fixed = plan.set_securebits &&
                       (plan.securebits & (SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP)) != 0;
    if (changes_uid && plan.keep != 0 && !fixed)
        ops.push_back({.code = child_op_code::call,
                       .step = step::keep_capabilities,
                       .a = 1,
                       .data = &plan,
                       .run = &child_keep_capabilities});
}

// The operations of steps 5-6 above, for a launch to put after its own
// setgroups/setgid/setuid. The plan must outlive the child's exec. Parent side.
template <class = void>
inline void add_capability_steps_after_ids(std::vector<child_op>& ops, const capability_plan& plan) {
    ops.push_back({.code = child_op_code::call,
                   .step = step::set_capabilities,
                   .data = &plan,
                   .run = &child_set_capabilities});
    ops.push_back({.code = child_op_code::call,
                   .step = step::set_ambient_capabilities,
                   .data = &plan,
                   .run = &child_set_ambient_capabilities});
}

}  // namespace ctr::detail
