#pragma once
// The seccomp BPF emitter: turns a list of rules into a classic BPF program.
//
// ctr writes its own BPF rather than linking libseccomp. The program has one
// shape (docs/security.md shows it):
//
//   1. load seccomp_data.arch; anything but the expected architecture (on
//      x86-64: the i386 ABI, entered through int 0x80) gets the foreign-ABI
//      action, because its numbers mean other calls;
//   2. load seccomp_data.nr; numbers from 0x40000000 on (__X32_SYSCALL_BIT,
//      the x32 ABI, which shares the x86-64 arch value) get the same action;
//   3. a balanced binary search over the numbers, split into ranges in which
//      every number has the same plain action, so a call costs O(log n)
//      comparisons rather than a walk down a list;
//   4. at a leaf: a return, or for a call with argument rules, those rules in
//      order (each a conjunction of 64-bit comparisons) and then its fallback.
//
// Classic BPF has 32-bit loads and 8-bit conditional jump offsets. A 64-bit
// argument is compared as two words (the low word at args[i], the high word
// 4 bytes on, on little-endian x86-64), and a target more than 255
// instructions away is reached through an unconditional jump (JA, 32-bit
// offset). The program is emitted backwards, from its last instruction to its
// first, so that every jump target already has its place when the jump is
// written.
//
// This runs in the parent only: it allocates and throws.

#include <ctr/error.hpp>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "seccomp_bpf.hpp loads the low word of an argument first: little-endian only");

namespace ctr::detail::bpf {

// Where the kernel's struct seccomp_data keeps each field.
inline constexpr std::uint32_t offset_nr = offsetof(seccomp_data, nr);
inline constexpr std::uint32_t offset_arch = offsetof(seccomp_data, arch);
inline constexpr std::uint32_t offset_args = offsetof(seccomp_data, args);
inline constexpr unsigned argument_count = 6;

// The kernel refuses longer programs (BPF_MAXINSNS).
inline constexpr std::size_t max_instructions = BPF_MAXINSNS;
// A conditional jump reaches at most this many instructions ahead.
inline constexpr std::size_t max_short_jump = 255;

// How one argument is compared; every comparison is unsigned and 64 bits wide.
enum class arg_op : std::uint8_t {
    eq,         // arg == value
    ne,         // arg != value
    masked_eq,  // (arg & extra) == value
    masked_ne,  // (arg & extra) != value
    gt,         // arg > value
    ge,         // arg >= value
    lt,         // arg < value
    le,         // arg <= value
    in_range,   // value <= arg <= extra
};

struct arg_check {
    unsigned index = 0;  // 0..5
    arg_op op = arg_op::eq;
    std::uint64_t value = 0;
    std::uint64_t extra = 0;  // the mask (masked_*) or the upper bound (in_range)
};

struct rule {
    std::uint32_t nr = 0;
    std::uint32_t action = SECCOMP_RET_KILL_PROCESS;  // a SECCOMP_RET_* value
    std::vector<arg_check> checks;                    // all must hold; none: always
};

struct program_spec {
    std::uint32_t arch = AUDIT_ARCH_X86_64;
    // Numbers from here on belong to another ABI (x32 on x86-64).
    std::uint32_t foreign_nr_from = 0x40000000U;
    std::uint32_t foreign_action = SECCOMP_RET_KILL_PROCESS;
    // For a known number without a matching rule, and for a ruled number
    // whose rules all fail.
    std::uint32_t default_action = SECCOMP_RET_KILL_PROCESS;
    // For a number that is neither known nor ruled: holes and calls newer
    // than the caller's table.
    std::uint32_t unknown_action = SECCOMP_RET_ERRNO | ENOSYS;
    std::vector<std::uint32_t> known;  // sorted ascending, no duplicates
    std::vector<rule> rules;           // tried in this order, per number
};

constexpr sock_filter statement(std::uint16_t code, std::uint32_t k) noexcept { return sock_filter{code, 0, 0, k}; }

// Builds the program backwards. Positions count from the end: the first
// instruction emitted is the program's last. A jump from position q to
// position t (t < q) has the offset q - t - 1, whatever comes before them.
class emitter {
public:
    // Where a jump goes: an instruction already emitted, or "return this".
    struct target {
        bool is_return = false;
        std::uint32_t action = 0;
        std::size_t at = 0;
    };
    template <class = void>
    static target returning(std::uint32_t action) noexcept { return {true, action, 0}; }
    template <class = void>
    static target position(std::size_t at) noexcept { return {false, 0, at}; }

    template <class = void>
    std::size_t size() const noexcept { return reversed_.size(); }

    template <class = void>
    std::size_t emit(sock_filter instruction) {
        reversed_.push_back(instruction);
        return reversed_.size() - 1;
    }
    template <class = void>
    std::size_t load_word(std::uint32_t offset) { return emit(statement(BPF_LD | BPF_W | BPF_ABS, offset)); }
    template <class = void>
    std::size_t and_with(std::uint32_t mask) { return emit(statement(BPF_ALU | BPF_AND | BPF_K, mask)); }

    // Makes `t` an emitted instruction that a jump placed `slack` instructions
    // from now can still reach with an 8-bit offset: a return is shared with
    // an earlier one for the same action when that one is near enough, and a
    // far instruction is reached through a JA placed here.
    template <class = void>
    target place(target t, std::size_t slack) {
        if (t.is_return) {
            for (auto& [action, at] : returns_)
                if (action == t.action && size() - at - 1 + slack <= max_short_jump) return position(at);
            const std::size_t at = emit(statement(BPF_RET | BPF_K, t.action));
            remember_return(t.action, at);
            return position(at);
        }
        if (size() - t.at - 1 + slack <= max_short_jump) return t;
        return position(emit(statement(BPF_JMP | BPF_JA, static_cast<std::uint32_t>(size() - t.at - 1))));
    }

    // Emits `if (A <op> k) goto when_true; else goto when_false;`.
    template <class = void>
    std::size_t jump(std::uint16_t op, std::uint32_t k, target when_true, target when_false) {
        // Each place() emits at most one instruction, so slack 2 leaves room
        // for both.
        const target t = place(when_true, 2);
        const target f = place(when_false, 2);
        const std::size_t here = size();
        sock_filter j{static_cast<std::uint16_t>(BPF_JMP | op | BPF_K), static_cast<std::uint8_t>(here - t.at - 1),
                      static_cast<std::uint8_t>(here - f.at - 1), k};
        return emit(j);
    }

    // The program in execution order.
    template <class = void>
    std::vector<sock_filter> finish() && {
        std::reverse(reversed_.begin(), reversed_.end());
        return std::move(reversed_);
    }

private:
    template <class = void>
    void remember_return(std::uint32_t action, std::size_t at) {
        for (auto& entry : returns_)
            if (entry.first == action) {
                entry.second = at;
                return;
            }
        returns_.emplace_back(action, at);
    }

    std::vector<sock_filter> reversed_;
    std::vector<std::pair<std::uint32_t, std::size_t>> returns_;  // the latest return per action
};

constexpr std::uint32_t low_word(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v); }
constexpr std::uint32_t high_word(std::uint64_t v) noexcept { return static_cast<std::uint32_t>(v >> 32); }

// Emits one argument check, entered at the returned target, that continues
// at `match` when it holds and at `fail` when not.
template <class = void>
inline emitter::target emit_check(emitter& e, const arg_check& c, emitter::target match, emitter::target fail) {
    using target = emitter::target;
    // Both ends are used by several jumps: give them a place once.
    match = e.place(match, 12);
    fail = e.place(fail, 12);
    const std::uint32_t low = offset_args + 8 * c.index;
    const std::uint32_t high = low + 4;
    const std::uint32_t lo = low_word(c.value);
    const std::uint32_t hi = high_word(c.value);
    const auto load = [&](std::uint32_t offset) { return emitter::position(e.load_word(offset)); };
    switch (c.op) {
        case arg_op::eq: {
            // ld hi; jeq hi ? next : fail; ld lo; jeq lo ? match : fail
            e.jump(BPF_JEQ, lo, match, fail);
            const target next = load(low);
            e.jump(BPF_JEQ, hi, next, fail);
            return load(high);
        }
        case arg_op::ne: {
            // ld hi; jeq hi ? next : match; ld lo; jeq lo ? fail : match
            e.jump(BPF_JEQ, lo, fail, match);
            const target next = load(low);
            e.jump(BPF_JEQ, hi, next, match);
            return load(high);
        }
        case arg_op::masked_eq:
        case arg_op::masked_ne: {
            // Per word: ld; and mask (left out when the mask is all ones);
            // jeq. A word whose mask is 0 always compares 0 with the value's
            // word, so it is decided here and emits nothing.
            const bool equal = c.op == arg_op::masked_eq;
            const std::uint32_t lo_mask = low_word(c.extra);
            const std::uint32_t hi_mask = high_word(c.extra);
            if ((lo_mask == 0 && lo != 0) || (hi_mask == 0 && hi != 0)) return equal ? fail : match;
            // Both words equal: `equal` holds; either differs: it does not.
            const target both_equal = equal ? match : fail;
            const target differs = equal ? fail : match;
            target next = both_equal;
            const auto word = [&](std::uint32_t offset, std::uint32_t mask, std::uint32_t value) {
                if (mask == 0) return;
                e.jump(BPF_JEQ, value, next, differs);
                if (mask != 0xffffffffU) e.and_with(mask);
                next = load(offset);
            };
            word(low, lo_mask, lo);
            word(high, hi_mask, hi);
            return next;
        }
        case arg_op::gt:
        case arg_op::ge: {
            // ld hi; jgt hi ? match : next; jeq hi ? next2 : fail; ld lo; j{gt,ge} lo ? match : fail
            e.jump(c.op == arg_op::gt ? BPF_JGT : BPF_JGE, lo, match, fail);
            const target low_part = load(low);
            const target equal_high = emitter::position(e.jump(BPF_JEQ, hi, low_part, fail));
            e.jump(BPF_JGT, hi, match, equal_high);
            return load(high);
        }
        case arg_op::lt:
        case arg_op::le: {
            // ld hi; jgt hi ? fail : next; jeq hi ? next2 : match; ld lo; j{ge,gt} lo ? fail : match
            e.jump(c.op == arg_op::lt ? BPF_JGE : BPF_JGT, lo, fail, match);
            const target low_part = load(low);
            const target equal_high = emitter::position(e.jump(BPF_JEQ, hi, low_part, match));
            e.jump(BPF_JGT, hi, fail, equal_high);
            return load(high);
        }
        case arg_op::in_range: {
            const target upper = emit_check(e, {c.index, arg_op::le, c.extra, 0}, match, fail);
            return emit_check(e, {c.index, arg_op::ge, c.value, 0}, upper, fail);
        }
    }
    return fail;
}

// What happens to the numbers of one range of the dispatch.
struct plan {
    bool has_rules = false;                 // rules to try first (a single number)
    std::uint32_t action = 0;               // without rules: the action; with: the fallback
    std::vector<const rule*> rules;         // in order
};

struct segment {
    std::uint32_t first = 0;  // the range runs to the next segment's first number
    plan what;
};

// The rules of one number, as a plan: a rule without checks ends the list
// (it becomes the fallback; later rules can never run), and rules at the end
// whose action is the fallback's change nothing.
template <class = void>
inline plan plan_for(std::uint32_t fallback, std::span<const rule* const> rules) {
    plan p;
    p.action = fallback;
    for (const rule* r : rules) {
        if (r->checks.empty()) {
            p.action = r->action;
            break;
        }
        p.rules.push_back(r);
    }
    while (!p.rules.empty() && p.rules.back()->action == p.action) p.rules.pop_back();
    p.has_rules = !p.rules.empty();
    return p;
}

template <class = void>
inline emitter::target emit_plan(emitter& e, const plan& p) {
    if (!p.has_rules) return emitter::returning(p.action);
    // Backwards: the fallback, then each rule from the last to the first;
    // a rule's failed check continues with the next rule.
    emitter::target next = emitter::returning(p.action);
    // (Indexes, not reverse iterators: a reverse_iterator's C++20 concept
    // checks cost every includer's compile, called or not.)
    for (std::size_t i = p.rules.size(); i-- > 0;) {
        const rule& r = *p.rules[i];
        emitter::target entry = emitter::returning(r.action);
        for (std::size_t k = r.checks.size(); k-- > 0;) entry = emit_check(e, r.checks[k], entry, next);
        next = entry;
    }
    return next;
}

// Emits the search over segments [first, last]; the accumulator holds nr.
template <class = void>
inline emitter::target emit_search(emitter& e, std::span<const segment> segments, std::size_t first,
                                   std::size_t last) {
    if (first == last) return emit_plan(e, segments[first].what);
    const std::size_t middle = first + (last - first + 1) / 2;
    // The upper half is emitted first, so it lies further on in the program.
    const emitter::target upper = emit_search(e, segments, middle, last);
    const emitter::target lower = emit_search(e, segments, first, middle - 1);
    return emitter::position(e.jump(BPF_JGE, segments[middle].first, upper, lower));
}

// Splits [0, foreign_nr_from) into ranges with one plan each; neighbouring
// numbers with the same plain action share a range.
template <class = void>
inline std::vector<segment> segments_for(const program_spec& spec) {
    std::vector<std::uint32_t> numbers = spec.known;
    for (const rule& r : spec.rules) numbers.push_back(r.nr);
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());

    std::vector<std::vector<const rule*>> rules_of(numbers.size());
    for (const rule& r : spec.rules) {
        const auto at = std::lower_bound(numbers.begin(), numbers.end(), r.nr) - numbers.begin();
        rules_of[static_cast<std::size_t>(at)].push_back(&r);
    }

    std::vector<segment> segments;
    const auto add = [&](std::uint32_t first, plan p) {
        if (!segments.empty() && !p.has_rules && !segments.back().what.has_rules &&
            segments.back().what.action == p.action)
            return;
        segments.push_back({first, std::move(p)});
    };
    std::uint32_t next = 0;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        const std::uint32_t n = numbers[i];
        if (n > next) add(next, plan{false, spec.unknown_action, {}});
        add(n, plan_for(spec.default_action, std::span<const rule* const>(rules_of[i].data(), rules_of[i].size())));
        next = n + 1;
    }
    if (next < spec.foreign_nr_from) add(next, plan{false, spec.unknown_action, {}});
    return segments;
}

// The whole program. Throws ctr::error(step::compile_seccomp): EINVAL for a
// malformed spec, E2BIG when the program would exceed the kernel's limit.
template <class = void>
inline std::vector<sock_filter> compile(const program_spec& spec) {
    const auto invalid = [](std::string detail) {
        return ctr::error(ctr::step::compile_seccomp, EINVAL, {}, detail);
    };
    if (spec.foreign_nr_from == 0) throw invalid("no system call number is below the foreign-ABI boundary");
    if (!std::is_sorted(spec.known.begin(), spec.known.end()) ||
        std::adjacent_find(spec.known.begin(), spec.known.end()) != spec.known.end())
        throw invalid("the known numbers are not sorted and distinct");
    if (!spec.known.empty() && spec.known.back() >= spec.foreign_nr_from)
        throw invalid("a known number lies in the foreign-ABI range");
    for (const rule& r : spec.rules) {
        if (r.nr >= spec.foreign_nr_from)
            throw invalid("system call number " + std::to_string(r.nr) + " lies in the foreign-ABI range");
        for (const arg_check& c : r.checks)
            if (c.index >= argument_count)
                throw invalid("argument index " + std::to_string(c.index) + " is not in 0..5");
    }

    const std::vector<segment> segments = segments_for(spec);
    emitter e;
    const emitter::target dispatch = emit_search(e, std::span<const segment>(segments.data(), segments.size()), 0, segments.size() - 1);
    // The head, backwards: ld arch; jeq arch ? next : foreign; ld nr;
    // jge foreign_nr_from ? foreign : dispatch.
    const emitter::target foreign = emitter::returning(spec.foreign_action);
    e.jump(BPF_JGE, spec.foreign_nr_from, foreign, dispatch);
    const std::size_t load_nr = e.load_word(offset_nr);
    e.jump(BPF_JEQ, spec.arch, emitter::position(load_nr), foreign);
    e.load_word(offset_arch);

    if (e.size() > max_instructions)
        throw ctr::error(ctr::step::compile_seccomp, E2BIG, {},
                         "the program needs " + std::to_string(e.size()) +
                             " instructions; the kernel accepts at most " + std::to_string(max_instructions));
    return std::move(e).finish();
}

// A SECCOMP_RET_* value as text: "ALLOW", "ERRNO(1)", ...
template <class = void>
inline std::string return_value_name(std::uint32_t value) {
    const std::uint32_t data = value & SECCOMP_RET_DATA;
    switch (value & SECCOMP_RET_ACTION_FULL) {
        case SECCOMP_RET_KILL_PROCESS: return "KILL_PROCESS";
        case SECCOMP_RET_KILL_THREAD: return "KILL_THREAD";
        case SECCOMP_RET_TRAP: return "TRAP(" + std::to_string(data) + ")";
        case SECCOMP_RET_ERRNO: return "ERRNO(" + std::to_string(data) + ")";
        case SECCOMP_RET_USER_NOTIF: return "USER_NOTIF";
        case SECCOMP_RET_TRACE: return "TRACE(" + std::to_string(data) + ")";
        case SECCOMP_RET_LOG: return "LOG";
        case SECCOMP_RET_ALLOW: return "ALLOW";
    }
    return "RET(" + std::to_string(value) + ")";
}

// One line per instruction, with absolute jump targets, for reading a
// program and for tests.
template <class = void>
inline std::string disassemble(std::span<const sock_filter> program) {
    std::string out;
    char line[160];
    const auto field = [](std::uint32_t k) -> const char* {
        if (k == offset_nr) return "nr";
        if (k == offset_arch) return "arch";
        return nullptr;
    };
    for (std::size_t pc = 0; pc < program.size(); ++pc) {
        const sock_filter& f = program[pc];
        const auto code = f.code;
        if (code == (BPF_LD | BPF_W | BPF_ABS)) {
            if (const char* name = field(f.k)) std::snprintf(line, sizeof line, "%4zu: ld %s\n", pc, name);
            else if (f.k >= offset_args && f.k < offset_args + 8 * argument_count)
                std::snprintf(line, sizeof line, "%4zu: ld args[%u].%s\n", pc, (f.k - offset_args) / 8,
                              (f.k - offset_args) % 8 ? "high" : "low");
            else std::snprintf(line, sizeof line, "%4zu: ld [%u]\n", pc, f.k);
        } else if (code == (BPF_ALU | BPF_AND | BPF_K)) {
            std::snprintf(line, sizeof line, "%4zu: and #0x%x\n", pc, f.k);
        } else if (code == (BPF_RET | BPF_K)) {
            std::snprintf(line, sizeof line, "%4zu: ret %s\n", pc, return_value_name(f.k).c_str());
        } else if (code == (BPF_JMP | BPF_JA)) {
            std::snprintf(line, sizeof line, "%4zu: ja %zu\n", pc, pc + 1 + f.k);
        } else if (BPF_CLASS(code) == BPF_JMP) {
            const char* op = BPF_OP(code) == BPF_JEQ ? "jeq" : BPF_OP(code) == BPF_JGT ? "jgt"
                           : BPF_OP(code) == BPF_JGE ? "jge" : BPF_OP(code) == BPF_JSET ? "jset" : "j?";
            std::snprintf(line, sizeof line, "%4zu: %s #0x%x ? %zu : %zu\n", pc, op, f.k, pc + 1 + f.jt,
                          pc + 1 + f.jf);
        } else {
            std::snprintf(line, sizeof line, "%4zu: code 0x%x jt %u jf %u k 0x%x\n", pc, code, f.jt, f.jf, f.k);
        }
        out += line;
    }
    return out;
}

}  // namespace ctr::detail::bpf
