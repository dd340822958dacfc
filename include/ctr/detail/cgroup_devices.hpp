#pragma once
// Device rules for a group (OCI linux.resources.devices): the rule type,
// its checks, the text the v1 devices controller takes, and the
// BPF_PROG_TYPE_CGROUP_DEVICE program that does the same job on cgroup v2,
// which has no devices controller. Building is pure; loading and attaching
// go through detail::sys.

#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <linux/bpf.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctr::cgroup {

// One device rule. Rules apply in order and the last one that matches an
// access decides it; an access no rule matches is allowed (as in a new v1
// group, which starts from its parent's allow-all). So a list starts with
// a deny-all rule, {.allow = false}, and then allows what the container
// may use. docs/cgroups.md lists the usual allow-list (null, zero, ...).
struct device_rule {
    bool allow = false;
    char type = 'a';                      // 'a' all devices, 'c' character, 'b' block
    std::optional<std::uint32_t> major{};  // empty: any
    std::optional<std::uint32_t> minor{};  // empty: any
    std::string access = "rwm";           // a subset of "rwm": read, write, mknod; empty means "rwm"
};

}  // namespace ctr::cgroup

namespace ctr::detail {

// The access of a checked rule as BPF_DEVCG_ACC_* bits.
template <class = void>
inline std::uint32_t device_access_bits(std::string_view access) {
    std::uint32_t bits = 0;
    for (char c : access.empty() ? std::string_view("rwm") : access)
        bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
    return bits;
}

// Throws ctr::error(set_cgroup_limit, EINVAL) naming rule `index` and why.
template <class = void>
inline void check_device_rule(const cgroup::device_rule& r, std::size_t index) {
    const auto fail = [&](const std::string& why) {
        throw error(step::set_cgroup_limit, EINVAL, "devices[" + std::to_string(index) + "]", why);
    };
    if (r.type != 'a' && r.type != 'c' && r.type != 'b')
        fail(std::string("bad type '") + r.type + "': 'a' (all devices), 'c' (character) or 'b' (block)");
    std::uint32_t seen = 0;
    for (char c : r.access) {
        const std::uint32_t bit = device_access_bits(std::string_view(&c, 1));
        if (c != 'r' && c != 'w' && c != 'm') fail("bad access '" + r.access + "': a subset of \"rwm\"");
        if (seen & bit) fail("bad access '" + r.access + "': '" + std::string(1, c) + "' twice");
        seen |= bit;
    }
    // The v1 controller takes "a" as a whole: every device, every access.
    if (r.type == 'a' && (r.major || r.minor || device_access_bits(r.access) != device_access_bits("rwm")))
        fail("a rule of type 'a' covers every device and every access; give 'c' or 'b' with a major and minor "
             "to narrow it");
}

// The line for devices.allow or devices.deny: "a", or "c 1:3 rwm" with '*'
// for an empty number.
template <class = void>
inline std::string device_rule_v1_text(const cgroup::device_rule& r) {
    if (r.type == 'a') return "a";
    const auto number = [](const std::optional<std::uint32_t>& n) { return n ? std::to_string(*n) : std::string("*"); };
    return std::string(1, r.type) + " " + number(r.major) + ":" + number(r.minor) + " "
           + (r.access.empty() ? std::string("rwm") : r.access);
}

// The cgroup v2 program for `rules` (checked): the rules are tried from the
// last to the first, and the first that matches answers (1 allow, 0 deny);
// none matching allows. An allow rule matches an access wholly within its
// own; a deny rule one that asks for any of its own (so "deny c 1:5 w"
// refuses read-write opens too), as the v1 controller decides.
template <class = void>
inline std::vector<bpf_insn> device_program(const std::vector<cgroup::device_rule>& rules) {
    std::vector<bpf_insn> p;
    const auto insn = [&](std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
        bpf_insn i{};
        i.code = code;
        i.dst_reg = dst & 0xf;
        i.src_reg = src & 0xf;
        i.off = off;
        i.imm = imm;
        p.push_back(i);
    };
    // struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } in r1.
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
    insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
    insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff);  // r3: type
    insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
    insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_4, 0, 0, 16);  // r4: access
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 4, 0);  // r5: major
    insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_1, 8, 0);  // r6: minor
    for (std::size_t index = rules.size(); index-- > 0;) {
        const cgroup::device_rule* r = &rules[index];
        std::vector<std::size_t> to_next;  // jumps to patch to the next rule's block
        const auto jump = [&](std::uint8_t op, std::uint8_t dst, std::uint8_t src, std::int32_t imm) {
            to_next.push_back(p.size());
            insn(static_cast<std::uint8_t>(BPF_JMP32 | op | (src ? BPF_X : BPF_K)), dst, src, 0, imm);
        };
        if (r->type != 'a')
            jump(BPF_JNE, BPF_REG_3, 0, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
        const std::uint32_t mask = device_access_bits(r->access);
        if (mask != device_access_bits("rwm")) {
            insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_4, 0, 0);
            insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_7, 0, 0, static_cast<std::int32_t>(mask));
            if (r->allow)
                jump(BPF_JNE, BPF_REG_7, BPF_REG_4, 0);  // asks for more than the rule gives
            else
                jump(BPF_JEQ, BPF_REG_7, 0, 0);  // asks for nothing the rule denies
        }
        // Immediates are 32 bits; JMP32 compares them as such.
        if (r->major) jump(BPF_JNE, BPF_REG_5, 0, static_cast<std::int32_t>(*r->major));
        if (r->minor) jump(BPF_JNE, BPF_REG_6, 0, static_cast<std::int32_t>(*r->minor));
        insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
        insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        // A rule that matches everything ends the program: the verifier
        // refuses code that cannot be reached.
        if (to_next.empty()) return p;
        for (std::size_t j : to_next) p[j].off = static_cast<std::int16_t>(p.size() - j - 1);
    }
    insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return p;
}

// Loads the program for `rules` and attaches it to the cgroup v2 directory
// `dirfd` with BPF_F_ALLOW_MULTI, so that programs attached above (by
// systemd, say) still apply, and one attached here does not stop a group
// below from having its own. The cgroup keeps the program until it is
// removed: nothing needs to stay open. Throws ctr::error(set_cgroup_limit)
// naming `dir`, with the verifier's log when it refuses the program.
template <class = void>
inline void attach_device_program(int dirfd, const std::string& dir, const std::vector<cgroup::device_rule>& rules) {
    const std::vector<bpf_insn> program = device_program(rules);
    static const char license[] = "Apache-2.0";
    const auto load = [&](char* log, std::uint32_t log_size) {
        union bpf_attr attr {};
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insn_cnt = static_cast<std::uint32_t>(program.size());
        attr.insns = reinterpret_cast<std::uintptr_t>(program.data());
        attr.license = reinterpret_cast<std::uintptr_t>(license);
        if (log) {
            attr.log_level = 1;
            attr.log_buf = reinterpret_cast<std::uintptr_t>(log);
            attr.log_size = log_size;
        }
        return sys::bpf(BPF_PROG_LOAD, &attr, sizeof attr);
    };
    long fd = load(nullptr, 0);
    if (fd == -EPERM || fd == -EACCES)
        throw error(step::set_cgroup_limit, static_cast<int>(-fd), dir,
                    "devices: loading the cgroup v2 device program (bpf BPF_PROG_LOAD) needs CAP_BPF or "
                    "CAP_SYS_ADMIN in the initial user namespace; a rootless caller cannot restrict devices on "
                    "cgroup v2 (leave limits::devices empty there)");
    if (fd < 0) {
        std::string log(16384, '\0');
        // With the log the verifier may pass what it refused (odd): then
        // there is nothing to report from it.
        if (const long again = load(log.data(), static_cast<std::uint32_t>(log.size())); again >= 0) {
            sys::close(static_cast<int>(again));
            log.clear();
        }
        log.resize(log.find('\0') == std::string::npos ? log.size() : log.find('\0'));
        throw error(step::set_cgroup_limit, static_cast<int>(-fd), dir,
                    "devices: the kernel refused the device program (bpf BPF_PROG_LOAD, "
                        + std::to_string(program.size()) + " instructions)" + (log.empty() ? "" : ": " + log));
    }
    unique_fd prog(static_cast<int>(fd));
    union bpf_attr attr {};
    attr.target_fd = static_cast<std::uint32_t>(dirfd);
    attr.attach_bpf_fd = static_cast<std::uint32_t>(prog.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (const long r = sys::bpf(BPF_PROG_ATTACH, &attr, sizeof attr); r < 0)
        throw error(step::set_cgroup_limit, static_cast<int>(-r), dir,
                    std::string("devices: attaching the device program (bpf BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI)")
                        + (r == -EPERM ? ": a program attached above without BPF_F_ALLOW_MULTI forbids programs below"
                                       : ""));
}

}  // namespace ctr::detail
