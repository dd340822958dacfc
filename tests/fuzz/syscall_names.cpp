// Fuzz target: system call names as seccomp rules take them
// (seccomp::builder::rule(name, ...), the x86-64 name table), and the BPF
// program the builder compiles from those rules.
//
// The input is a rule a line: "NAME ACTION [ARG:OP:VALUE[:EXTRA]]...",
// ACTION one of allow, kill, kill_thread, trap, log or errno=N, OP one of
// eq ne meq mne gt ge lt le in (meq/mne take the mask, in the upper bound,
// as EXTRA). Lines the harness cannot read are left out.
//
// Properties: the name table is consistent both ways; the builder refuses a
// rule set exactly when a name is unknown, an errno or argument index is out
// of range, a condition is impossible, or a plain rule contradicts an
// earlier one (the documented rules), and then with
// ctr::error(compile_seccomp); otherwise it builds (or says E2BIG), and the
// program, run by a small classic BPF interpreter, gives every call what the
// first matching rule says, the default action to known calls without one,
// the unknown-call action to other numbers, and kills a foreign ABI.
#include "fuzz.hpp"

#include <ctr/seccomp.hpp>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

namespace sc = ctr::seccomp;
namespace table = ctr::detail::syscall_table_x86_64;

namespace {

struct line_rule {
    std::string name;
    sc::action what = sc::action::allow();
    std::vector<sc::condition> all_of;
};

std::optional<std::uint64_t> number(std::string_view text) {
    if (text.empty() || text.size() > 24) return std::nullopt;
    const std::string s(text);
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (errno != 0 || *end != '\0' || s[0] == '-' || s[0] == '+' || s[0] == ' ') return std::nullopt;
    return v;
}

std::optional<sc::action> action_of(std::string_view text) {
    if (text == "allow") return sc::action::allow();
    if (text == "kill") return sc::action::kill_process();
    if (text == "kill_thread") return sc::action::kill_thread();
    if (text == "trap") return sc::action::trap();
    if (text == "log") return sc::action::log();
    if (text.starts_with("errno=")) {
        const auto n = number(text.substr(6));
        if (!n || *n > 100000) return std::nullopt;
        return sc::action::fail_with(static_cast<int>(*n));
    }
    return std::nullopt;
}

std::optional<sc::condition> condition_of(std::string_view text) {
    const auto f = ctr_fuzz::split(text, ':');
    if (f.size() < 3 || f.size() > 4) return std::nullopt;
    const auto index = number(f[0]), value = number(f[2]);
    const auto extra = f.size() == 4 ? number(f[3]) : std::optional<std::uint64_t>(0);
    if (!index || !value || !extra || *index > 100) return std::nullopt;
    sc::condition c{static_cast<unsigned>(*index), sc::compare::equal, *value};
    const std::string_view op = f[1];
    if (op == "eq") c.op = sc::compare::equal;
    else if (op == "ne") c.op = sc::compare::not_equal;
    else if (op == "meq" || op == "mne") {
        c.op = op == "meq" ? sc::compare::masked_equal : sc::compare::masked_not_equal;
        c.mask = *extra;
    } else if (op == "gt") c.op = sc::compare::greater;
    else if (op == "ge") c.op = sc::compare::greater_equal;
    else if (op == "lt") c.op = sc::compare::less;
    else if (op == "le") c.op = sc::compare::less_equal;
    else if (op == "in") {
        c.op = sc::compare::in_range;
        c.upper = *extra;
    } else return std::nullopt;
    return c;
}

bool holds(const sc::condition& c, const std::uint64_t (&args)[6]) {
    const std::uint64_t a = args[c.index];
    switch (c.op) {
        case sc::compare::equal: return a == c.value;
        case sc::compare::not_equal: return a != c.value;
        case sc::compare::masked_equal: return (a & c.mask) == c.value;
        case sc::compare::masked_not_equal: return (a & c.mask) != c.value;
        case sc::compare::greater: return a > c.value;
        case sc::compare::greater_equal: return a >= c.value;
        case sc::compare::less: return a < c.value;
        case sc::compare::less_equal: return a <= c.value;
        case sc::compare::in_range: return c.value <= a && a <= c.upper;
    }
    return false;
}

// Classic BPF as seccomp runs it, for the instructions the compiler emits.
// Every jump must land inside the program and it must end in a return.
std::uint32_t run(std::span<const sock_filter> program, const seccomp_data& input) {
    std::uint32_t accumulator = 0;
    std::size_t pc = 0;
    for (std::size_t steps = 0; steps <= program.size(); ++steps) {
        CTR_FUZZ_CHECK(pc < program.size(), "ran off the end at %zu of %zu", pc, program.size());
        const sock_filter& i = program[pc];
        switch (BPF_CLASS(i.code)) {
            case BPF_LD: {
                CTR_FUZZ_CHECK(i.code == (BPF_LD | BPF_W | BPF_ABS) && i.k % 4 == 0 && i.k < sizeof input,
                               "bad load %#x k=%u", i.code, i.k);
                std::memcpy(&accumulator, reinterpret_cast<const char*>(&input) + i.k, 4);
                ++pc;
                break;
            }
            case BPF_ALU:
                CTR_FUZZ_CHECK(BPF_OP(i.code) == BPF_AND && BPF_SRC(i.code) == BPF_K, "bad alu %#x", i.code);
                accumulator &= i.k;
                ++pc;
                break;
            case BPF_JMP: {
                if (BPF_OP(i.code) == BPF_JA) {
                    pc += 1 + i.k;
                    break;
                }
                bool taken = false;
                switch (BPF_OP(i.code)) {
                    case BPF_JEQ: taken = accumulator == i.k; break;
                    case BPF_JGT: taken = accumulator > i.k; break;
                    case BPF_JGE: taken = accumulator >= i.k; break;
                    case BPF_JSET: taken = (accumulator & i.k) != 0; break;
                    default: CTR_FUZZ_CHECK(false, "bad jump %#x", i.code);
                }
                pc += 1 + (taken ? i.jt : i.jf);
                break;
            }
            case BPF_RET:
                CTR_FUZZ_CHECK(BPF_RVAL(i.code) == BPF_K, "bad return %#x", i.code);
                return i.k;
            default: CTR_FUZZ_CHECK(false, "unexpected instruction %#x", i.code);
        }
    }
    CTR_FUZZ_CHECK(false, "the program loops");
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = ctr_fuzz::as_text(data, size);

    // The table, both ways, for every name the input mentions.
    std::vector<line_rule> rules;
    for (std::string_view line : ctr_fuzz::split(text, '\n')) {
        const auto w = ctr_fuzz::split(line, ' ');
        const int nr = table::name_to_number(w[0]);
        if (nr >= 0) CTR_FUZZ_CHECK(table::number_to_name(nr) == w[0], "%d is not named back", nr);
        if (w.size() < 2 || rules.size() >= 64) continue;
        const auto what = action_of(w[1]);
        if (!what) continue;
        line_rule r{std::string(w[0]), *what, {}};
        bool readable = true;
        for (std::size_t i = 2; i < w.size() && readable; ++i) {
            const auto c = condition_of(w[i]);
            if (c) r.all_of.push_back(*c);
            else readable = false;
        }
        if (readable && r.all_of.size() <= 6) rules.push_back(std::move(r));
    }

    // What the builder must do, from its documented rules.
    bool should_fail = false;
    std::map<int, sc::action> decided;
    for (const line_rule& r : rules) {
        const int nr = table::name_to_number(r.name);
        bool bad = nr < 0 || !r.what.valid();
        for (const sc::condition& c : r.all_of) {
            bad = bad || c.index > 5;
            if (c.op == sc::compare::masked_equal || c.op == sc::compare::masked_not_equal)
                bad = bad || (c.value & ~c.mask) != 0;
            if (c.op == sc::compare::in_range) bad = bad || c.value > c.upper;
        }
        if (!bad) {
            if (const auto earlier = decided.find(nr); earlier != decided.end())
                bad = !(r.all_of.empty() && earlier->second == r.what);
            else if (r.all_of.empty())
                decided.emplace(nr, r.what);
        }
        if (bad) {
            should_fail = true;
            break;
        }
    }

    sc::builder b;
    b.default_action(sc::action::fail_with(EPERM));
    for (const line_rule& r : rules) b.rule(r.name, r.what, std::span<const sc::condition>(r.all_of));
    std::optional<sc::filter> filter;
    try {
        filter.emplace(b.build());
    } catch (const ctr::error& e) {
        CTR_FUZZ_CHECK(e.code().value() == EINVAL || e.code().value() == E2BIG, "errno %d", e.code().value());
        CTR_FUZZ_CHECK(should_fail || e.code().value() == E2BIG, "refused a valid rule set: %s", e.what());
        return 0;
    }
    CTR_FUZZ_CHECK(!should_fail, "built a rule set it must refuse");

    // Each ruled call with arguments at and around its conditions' values.
    const auto verdict = [&](int nr, const std::uint64_t (&args)[6]) {
        seccomp_data input{};
        input.nr = nr;
        input.arch = AUDIT_ARCH_X86_64;
        for (int i = 0; i < 6; ++i) input.args[i] = args[i];
        return run(filter->instructions(), input);
    };
    for (const line_rule& r : rules) {
        const int nr = table::name_to_number(r.name);
        std::vector<std::uint64_t> probes = {0, 1, ~std::uint64_t{0}};
        for (const sc::condition& c : r.all_of)
            for (std::uint64_t v : {c.value, c.value - 1, c.value + 1, c.upper, c.upper + 1, c.mask, c.value | ~c.mask})
                probes.push_back(v);
        for (std::size_t p = 0; p < probes.size() && p < 24; ++p) {
            std::uint64_t args[6];
            for (std::size_t i = 0; i < 6; ++i) args[i] = probes[(p + i) % probes.size()];
            std::uint32_t want = sc::action::fail_with(EPERM).return_value();
            for (const line_rule& other : rules) {
                if (table::name_to_number(other.name) != nr) continue;
                bool all = true;
                for (const sc::condition& c : other.all_of) all = all && holds(c, args);
                if (all) {
                    want = other.what.return_value();
                    break;
                }
            }
            const std::uint32_t got = verdict(nr, args);
            CTR_FUZZ_CHECK(got == want, "%s: %#x, rules say %#x", r.name.c_str(), got, want);
        }
    }
    const std::uint64_t none[6] = {};
    CTR_FUZZ_CHECK(verdict(0x40000000 | 39, none) == SECCOMP_RET_KILL_PROCESS, "a foreign ABI call lives");
    CTR_FUZZ_CHECK(verdict(100000, none) == (SECCOMP_RET_ERRNO | ENOSYS), "an unknown number is not ENOSYS");
    seccomp_data i386{};
    i386.arch = AUDIT_ARCH_I386;
    CTR_FUZZ_CHECK(run(filter->instructions(), i386) == SECCOMP_RET_KILL_PROCESS, "another arch lives");
    return 0;
}
