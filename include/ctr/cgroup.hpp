#pragma once
// ctr::cgroup::group: a cgroup of its own for a set of processes, with
// resource limits and accounting, on cgroup v2, v1 and hybrid hosts.
//
// A group is made below the calling process's own cgroup in every hierarchy
// it needs, is given its limits, and each limit is read back: a limit the
// kernel did not take, or a controller that is not there, is an error. When
// the group ends, everything left in it is killed, and its directories are
// removed. docs/cgroups.md describes the layouts and what each figure means.

#include <ctr/detail/cgroup_devices.hpp>
#include <ctr/detail/cgroup_fs.hpp>
#include <ctr/detail/cgroup_layout.hpp>
#include <ctr/detail/cgroup_parse.hpp>
#include <ctr/detail/syscall.hpp>
#include <ctr/error.hpp>
#include <ctr/unique_fd.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr::cgroup {

// Bandwidth and iops limits for one block device.
struct io_device_limit {
    std::string device;                     // "MAJ:MIN" ("254:0"), or a block device's path ("/dev/vda")
    std::optional<std::string> read_bps{};  // bytes per second as a size: "10M", or "max"
    std::optional<std::string> write_bps{};
    std::optional<std::uint64_t> read_iops{};
    std::optional<std::uint64_t> write_iops{};
};

// A limit on one huge page size's use (OCI hugepageLimits).
struct hugepage_limit {
    std::string page_size;  // as the kernel names it: "2MB", "1GB", "64KB"
    std::string max;        // bytes as a size ("1G"), or "max"; kept in whole huge pages
};

// What a group may use. Every field is optional; a set field needs its
// controller (memory, cpu, cpuset, pids, io) and is an error without it.
struct limits {
    // Sizes: "64M", "1.5G", "512k", "1048576", or "max" (binary units).
    std::optional<std::string> memory_max{};   // hard limit: above it the kernel reclaims, then OOM-kills
    std::optional<std::string> memory_high{};  // v2 only: above it the group is throttled and reclaimed
    std::optional<std::string> swap_max{};     // swap the group may use besides memory_max
    // Memory the group is protected from reclaim below (v2 memory.low), or
    // its soft limit (v1 memory.soft_limit_in_bytes): OCI memory.reservation.
    std::optional<std::string> memory_reservation{};
    // CPU time as a number of CPUs: 0.5 is half of one CPU, 2 is two CPUs,
    // enforced over each cpu_period.
    std::optional<double> cpus{};
    std::chrono::microseconds cpu_period{100'000};
    std::optional<std::uint32_t> cpu_weight{};  // share against siblings, 1..10000, default 100
    // The same share as v1 counts it (OCI cpu.shares), 2..262144, default
    // 1024: written as is to v1 cpu.shares, converted to cpu.weight on v2
    // (1 + (shares - 2) * 9999 / 262142, as runc and crun do). Not with cpu_weight.
    std::optional<std::uint64_t> cpu_shares{};
    std::optional<std::string> cpuset_cpus{};   // CPUs the group may run on: "0-3,6"
    std::optional<std::string> cpuset_mems{};   // memory nodes: "0"
    std::optional<std::uint64_t> pids_max{};    // processes and threads, together
    std::optional<std::uint32_t> io_weight{};   // share of disk time, 1..10000 (1..1000 on v1)
    std::vector<io_device_limit> io_max{};
    // Which devices the group's processes may open or mknod, in order, the
    // last matching rule deciding (see device_rule). v1: the devices
    // controller; v2: a BPF device program attached to the group (root only).
    std::vector<device_rule> devices{};
    std::vector<hugepage_limit> hugepages{};  // needs the hugetlb controller
};

struct options {
    // Groups are named "<prefix>-<pid>-<start time>-<counter>-<random>";
    // reap_stale(prefix) finds the ones whose creator is gone.
    std::string prefix = "ctr";
    // The group's exact path instead of a generated name, e.g. an OCI
    // cgroupsPath. "/a/b" starts at the root of each hierarchy as mounted
    // here (as runc and crun read it); "a/b" below this process's own
    // cgroup. Missing parents are made (and on v2 given the controllers
    // down the path) and stay when the group is removed. An existing group
    // at the path is an error (EEXIST) unless join_existing.
    std::string path{};
    // With `path`: use a group that exists there already, setting the
    // limits on it. A joined directory is not the handle's: the destructor
    // and remove() leave it (as for group::open).
    bool join_existing = false;
    // `= limits()`, not `{}`: see process::options (g++ 12 destroys a `{}`
    // member twice when a later designated initializer throws).
    cgroup::limits limits = cgroup::limits();
    // More controllers to put the group under, e.g. for their accounting
    // ("hugetlb"). An unknown or missing one is an error.
    std::vector<std::string> controllers{};
    // Also use memory, cpu, cpuacct and pids, where they are available, so
    // that read_stats() has figures without limits. Missing ones are skipped.
    bool accounting = true;
    // Hybrid hosts: make the group in the cgroup2 hierarchy only, leaving
    // the v1 controllers alone. Limits are then out of reach (the v2 side of
    // a hybrid host rarely has controllers), but cgroup.kill, cgroup.freeze,
    // cgroup.events and CLONE_INTO_CGROUP work. Pure v2: no effect; v1: error.
    bool unified_only = false;
    // cgroup v2: when this process's cgroup must hand controllers to the
    // group but cannot because it has processes of its own (EBUSY; the
    // "no internal processes" rule), move this process into a leaf cgroup
    // "ctr-leaf" below it first (see move_self_to_leaf). Off: that case is
    // an error saying so. ctr never moves a process silently.
    bool move_caller_to_leaf = false;
    // How long remove() and the destructor wait for the processes to die
    // and for rmdir to succeed.
    std::chrono::milliseconds remove_timeout{5000};
};

// Accounting. A figure the layout or kernel does not provide is empty,
// never zero; docs/cgroups.md says which file each comes from.
struct stats {
    std::optional<std::uint64_t> memory_current{};     // bytes charged now
    std::optional<std::uint64_t> memory_peak{};        // highest charge (v2 memory.peak, 5.19+; v1 max_usage_in_bytes)
    std::optional<std::uint64_t> memory_max_events{};  // v2 only: times usage was about to pass memory_max
    std::optional<std::uint64_t> oom_events{};         // v2 only: times the group was out of memory
    std::optional<std::uint64_t> oom_kills{};          // processes the OOM killer killed in the group
    std::optional<std::chrono::nanoseconds> cpu_usage{};  // user + system
    std::optional<std::chrono::nanoseconds> cpu_user{};
    std::optional<std::chrono::nanoseconds> cpu_system{};
    std::optional<std::uint64_t> cpu_periods{};            // enforcement periods with runnable tasks
    std::optional<std::uint64_t> cpu_throttled_periods{};  // periods in which the quota ran out
    std::optional<std::chrono::nanoseconds> cpu_throttled_time{};
    std::optional<std::uint64_t> pids_current{};
    std::optional<std::uint64_t> pids_peak{};
    std::optional<std::uint64_t> pids_max_events{};  // forks refused at pids_max
};

template <class = void>
inline std::size_t reap_stale(std::string_view prefix);

// The smallest memory_max a group takes: Docker's floor. Below it a process
// cannot even be set up (the kernel's OOM killer ends it before exec), so a
// smaller limit is refused when the group is made rather than failing later.
inline constexpr std::uint64_t minimum_memory_max = 6 * 1024 * 1024;

namespace detail {

using namespace ::ctr::detail;

inline constexpr std::string_view known_controllers[] = {"cpu",   "cpuacct", "cpuset",  "memory",   "io",
                                                         "blkio", "pids",    "freezer", "hugetlb",  "rdma",
                                                         "misc",  "devices", "net_cls", "net_prio", "perf_event"};

template <class = void>
inline bool is_known_controller(std::string_view c) {
    for (auto k : known_controllers)
        if (k == c) return true;
    return false;
}

// A controller's name in a v1 hierarchy.
template <class = void>
inline std::string_view v1_controller_name(std::string_view c) { return c == "io" ? "blkio" : c; }

// Its name in v2: "" for what every v2 cgroup does without a controller
// (CPU time accounting, freezing, perf events); nothing when v2 has no such
// controller.
template <class = void>
inline std::optional<std::string_view> v2_controller_name(std::string_view c) {
    if (c == "blkio") return "io";
    if (c == "cpuacct" || c == "freezer" || c == "perf_event") return "";
    if (c == "devices" || c == "net_cls" || c == "net_prio") return std::nullopt;
    return c;
}

template <class = void>
inline std::uint64_t page_size() { return static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)); }

// What a v1 memory limit reads back as when it is unlimited.
template <class = void>
inline std::uint64_t v1_memory_unlimited() { return static_cast<std::uint64_t>(LONG_MAX) / page_size() * page_size(); }

// Where the group lives: which hierarchies, and which controllers in each.
struct member_plan {
    std::size_t hierarchy = 0;
    std::vector<std::string> controllers;  // v2: the ones to enable for the group
};

class planner {
public:
    template <class = void>
    planner(const cgroup_layout_info& layout, bool v2_only) : layout_(layout), v2_only_(v2_only) {}

    // Puts the group under `controller`. Returns false if it is missing and
    // not `required`; throws if it is missing and required, naming `what`
    // (the limit or option that needs it) under step `s`. `device_rules`:
    // the devices limit, which v2 enforces without a controller.
    template <class = void>
    bool use(std::string_view controller, bool required, ctr::step s, std::string_view what,
             bool device_rules = false) {
        if (!is_known_controller(controller)) {
            std::string known;
            for (auto k : known_controllers) known += std::string(known.empty() ? "" : " ") + std::string(k);
            throw error(step::enable_controllers, EINVAL, std::string(controller),
                        "unknown cgroup controller; known: " + known);
        }
        const auto missing = [&](const std::string& why) {
            if (!required) return false;
            throw error(
                s, ENOTSUP, std::string(what),
                "needs the " + std::string(controller) + " controller, which " + why + " (" + layout_.describe() + ")");
        };
        const cgroup_hierarchy* v2 = layout_.v2();
        const auto use_v2 = [&](std::string_view v2_name) {
            const std::size_t m = member_for(static_cast<std::size_t>(v2 - layout_.hierarchies.data()));
            if (!v2_name.empty()) add_unique(plan_[m].controllers, std::string(v2_name));
            place(controller, m);
            return true;
        };
        if (v2_only_) {
            if (!v2) return missing("needs cgroup v2, which is not mounted");
            if (!v2->usable()) return missing("cannot be used: " + v2->problem);
            // v2 has no devices controller; limits::devices becomes a BPF
            // program, which every v2 cgroup takes.
            const auto name = device_rules ? std::optional<std::string_view>("") : v2_controller_name(controller);
            if (!name) return missing("is a cgroup v1 controller only (cgroup v2 has no such controller)");
            if (!name->empty() && !v2->has(*name)) return missing("is not in " + v2->place_dir + "/cgroup.controllers");
            return use_v2(*name);
        }
        std::string problem;
        for (std::size_t i = 0; i < layout_.hierarchies.size(); ++i) {
            const auto& h = layout_.hierarchies[i];
            if (h.v2 || !h.has(v1_controller_name(controller))) continue;
            if (!h.usable()) {
                problem = "is mounted at " + h.mount_point + " but cannot be used: " + h.problem;
                continue;
            }
            place(controller, member_for(i));
            return true;
        }
        // A hybrid host's cgroup2 side may carry a controller that v1 lacks.
        if (v2 && v2->usable())
            if (const auto name = v2_controller_name(controller); name && !name->empty() && v2->has(*name))
                return use_v2(*name);
        return missing(problem.empty() ? "is not available" : problem);
    }

    // Makes sure the group has a directory somewhere, to hold its
    // processes, and puts the members in the layout's order (v2 first).
    template <class = void>
    void finish() {
        if (plan_.empty()) {
            for (std::size_t i = 0; i < layout_.hierarchies.size() && plan_.empty(); ++i) {
                const auto& h = layout_.hierarchies[i];
                if (h.usable() && h.v2 == v2_only_) member_for(i);
            }
            if (plan_.empty())
                throw error(step::cgroup_layout, ENOTSUP, {},
                            "no cgroup hierarchy to make a group in (" + layout_.describe() + ")");
        }
        std::vector<member_plan> sorted = plan_;
        std::sort(sorted.begin(), sorted.end(),
                  [](const member_plan& a, const member_plan& b) { return a.hierarchy < b.hierarchy; });
        for (auto& [controller, index] : where_)
            for (std::size_t i = 0; i < sorted.size(); ++i)
                if (sorted[i].hierarchy == plan_[index].hierarchy) {
                    index = i;
                    break;
                }
        plan_ = std::move(sorted);
    }

    template <class = void>
    std::vector<member_plan>& members() { return plan_; }
    // The index of the member that hosts `controller`, if the group uses it.
    template <class = void>
    std::optional<std::size_t> where(std::string_view controller) const {
        for (const auto& [name, index] : where_)
            if (name == controller) return index;
        return std::nullopt;
    }

private:
    template <class = void>
    static void add_unique(std::vector<std::string>& list, std::string value) {
        for (const auto& v : list)
            if (v == value) return;
        list.push_back(std::move(value));
    }
    template <class = void>
    std::size_t member_for(std::size_t hierarchy) {
        for (std::size_t i = 0; i < plan_.size(); ++i)
            if (plan_[i].hierarchy == hierarchy) return i;
        plan_.push_back({hierarchy, {}});
        return plan_.size() - 1;
    }

    const cgroup_layout_info& layout_;
    bool v2_only_;
    // Records that `controller` is hosted by member `m` (a later call for
    // the same controller wins).
    template <class = void>
    void place(std::string_view controller, std::size_t m) {
        for (auto& [name, index] : where_)
            if (name == controller) {
                index = m;
                return;
            }
        where_.emplace_back(std::string(controller), m);
    }

    std::vector<member_plan> plan_;
    // controller -> member; a few entries, so a vector rather than a std::map,
    // whose header every includer would parse.
    std::vector<std::pair<std::string, std::size_t>> where_;
};

// One limit: the file to write (the first of `targets` that exists), and a
// check of what the kernel then shows, which says why it is not what was
// asked for, or nothing when it is.
struct file_value {
    std::string file;
    std::string value;
};
struct limit_write {
    std::size_t member = 0;
    // A plain struct, not std::pair: each `{"file", value}` below would
    // otherwise instantiate pair's constructor checks for the length of
    // its literal, in every includer's compile.
    std::vector<file_value> targets;
    std::string what;                                          // the limits field, for messages
    std::function<std::optional<std::string>(std::string_view)> check;  // empty: nothing to read back
    // Instead of writing a file (the v2 device program): the group's
    // directory fd and path.
    std::function<void(int, const std::string&)> action{};
};

template <class = void>
inline std::string size_text(std::uint64_t bytes) { return bytes == cgroup_unlimited ? "max" : std::to_string(bytes); }

// Memory limits are kept in whole pages: the kernel rounds down.
template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_bytes(std::uint64_t wanted, bool v1) {
    const std::uint64_t expected = wanted == cgroup_unlimited ? wanted : wanted / page_size() * page_size();
    return [expected, v1](std::string_view back) -> std::optional<std::string> {
        auto got = parse_limit_value(back);
        if (got && v1 && *got >= v1_memory_unlimited()) got = cgroup_unlimited;
        if (got == expected) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "' instead of " + size_text(expected);
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_number(std::uint64_t wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        if (parse_limit_value(back) == wanted) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_text(std::string wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        if (cgroup_trim(back) == wanted) return std::nullopt;
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

template <class = void>
inline std::function<std::optional<std::string>(std::string_view)> expect_cpu_list(std::vector<unsigned> wanted) {
    return [wanted](std::string_view back) -> std::optional<std::string> {
        try {
            if (parse_cpu_list(back) == wanted) return std::nullopt;
        } catch (const error&) {
        }
        return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
    };
}

// A huge page size as the kernel names it in hugetlb files ("2MB", "1GB",
// "64KB"), in bytes; throws naming the text.
template <class = void>
inline std::uint64_t hugepage_size(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    const auto number = parse_decimal(std::string_view(text).substr(0, digits));
    const std::string_view unit = std::string_view(text).substr(digits);
    const std::uint64_t scale = unit == "KB"   ? 1024
                                : unit == "MB" ? 1024 * 1024
                                : unit == "GB" ? 1024 * 1024 * 1024
                                               : 0;
    if (!number || *number == 0 || scale == 0 || *number > (std::uint64_t{1} << 40))
        throw error(step::set_cgroup_limit, EINVAL, "hugepages",
                    "bad page size '" + text + "': write it as the kernel names it, e.g. \"2MB\" or \"1GB\"");
    return *number * scale;
}

// "MAJ:MIN" for a device given as "MAJ:MIN" or as a block device's path.
template <class = void>
inline std::string resolve_block_device(const std::string& device) {
    const auto colon = device.find(':');
    if (colon != std::string::npos && parse_decimal(std::string_view(device).substr(0, colon))
        && parse_decimal(std::string_view(device).substr(colon + 1)))
        return device;
    if (device.empty() || device.front() != '/')
        throw error(step::set_cgroup_limit, EINVAL, device, "io_max: a device is 'MAJ:MIN' or a block device's path");
    struct stat st {};
    if (const long r = sys::fstatat(AT_FDCWD, device.c_str(), &st, 0); r < 0)
        throw error(step::set_cgroup_limit, static_cast<int>(-r), device, "io_max: cannot stat the device");
    if (!S_ISBLK(st.st_mode)) throw error(step::set_cgroup_limit, ENOTBLK, device, "io_max: not a block device");
    return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

// The controller each set limit needs, with the limit's name.
template <class = void>
inline std::vector<std::pair<std::string_view, std::string_view>> limit_controllers(const limits& l) {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    if (l.memory_max) out.emplace_back("memory", "memory_max");
    if (l.memory_high) out.emplace_back("memory", "memory_high");
    if (l.swap_max) out.emplace_back("memory", "swap_max");
    if (l.memory_reservation) out.emplace_back("memory", "memory_reservation");
    if (l.cpus) out.emplace_back("cpu", "cpus");
    if (l.cpu_weight) out.emplace_back("cpu", "cpu_weight");
    if (l.cpu_shares) out.emplace_back("cpu", "cpu_shares");
    if (l.cpuset_cpus) out.emplace_back("cpuset", "cpuset_cpus");
    if (l.cpuset_mems) out.emplace_back("cpuset", "cpuset_mems");
    if (l.pids_max) out.emplace_back("pids", "pids_max");
    if (l.io_weight) out.emplace_back("io", "io_weight");
    if (!l.io_max.empty()) out.emplace_back("io", "io_max");
    if (!l.devices.empty()) out.emplace_back("devices", "devices");
    if (!l.hugepages.empty()) out.emplace_back("hugetlb", "hugepages");
    return out;
}

// The writes for `l`, in the order they must happen, once the planner has
// placed every controller limit_controllers() names. Throws on nonsense
// values and on limits the layout cannot express.
template <class = void>
inline std::vector<limit_write> plan_limits(const limits& l, const planner& plan, const cgroup_layout_info& layout,
                                            const std::vector<bool>& member_is_v2) {
    std::vector<limit_write> writes;
    const auto member = [&](std::string_view controller, std::string_view) { return *plan.where(controller); };
    const auto v2_of = [&](std::size_t m) { return member_is_v2.at(m); };

    std::optional<std::uint64_t> memory_max;
    if (l.memory_max) {
        const std::uint64_t bytes = parse_size(*l.memory_max, "memory_max");
        if (bytes < minimum_memory_max)
            throw error(step::set_cgroup_limit, EINVAL, "memory_max",
                        "'" + *l.memory_max + "' is below the floor of 6 MiB (" + std::to_string(minimum_memory_max) +
                            " bytes): a smaller limit cannot start a process, whose setup the out-of-memory killer "
                            "would end; Docker refuses the same");
        memory_max = bytes;
        const std::size_t m = member("memory", "memory_max");
        if (v2_of(m))
            writes.push_back({m, {{"memory.max", size_text(bytes)}}, "memory_max", expect_bytes(bytes, false)});
        else
            writes.push_back({m,
                              {{"memory.limit_in_bytes", bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                              "memory_max",
                              expect_bytes(bytes, true)});
    }
    if (l.memory_high) {
        const std::uint64_t bytes = parse_size(*l.memory_high, "memory_high");
        const std::size_t m = member("memory", "memory_high");
        if (!v2_of(m))
            throw error(step::set_cgroup_limit, ENOTSUP, "memory_high",
                        "memory.high exists only on cgroup v2, and the memory controller here is on v1 ("
                            + layout.describe() + "); use memory_max");
        writes.push_back({m, {{"memory.high", size_text(bytes)}}, "memory_high", expect_bytes(bytes, false)});
    }
    if (l.swap_max) {
        const std::uint64_t bytes = parse_size(*l.swap_max, "swap_max");
        const std::size_t m = member("memory", "swap_max");
        if (v2_of(m)) {
            writes.push_back({m, {{"memory.swap.max", size_text(bytes)}}, "swap_max", expect_bytes(bytes, false)});
        } else {
            // v1 limits memory and swap together (memory.memsw), so the
            // swap allowance is added to memory_max.
            std::uint64_t total = cgroup_unlimited;
            if (bytes != cgroup_unlimited) {
                if (!memory_max || *memory_max == cgroup_unlimited)
                    throw error(step::set_cgroup_limit, ENOTSUP, "swap_max",
                                "on cgroup v1 swap is limited together with memory (memory.memsw.limit_in_bytes), "
                                "so swap_max needs a memory_max");
                if (bytes > cgroup_unlimited - 1 - *memory_max)
                    throw error(step::set_cgroup_limit, EINVAL, "swap_max", "memory_max + swap_max is too large");
                total = *memory_max + bytes;
            }
            writes.push_back(
                {m,
                 {{"memory.memsw.limit_in_bytes", total == cgroup_unlimited ? "-1" : std::to_string(total)}},
                 "swap_max",
                 expect_bytes(total, true)});
        }
    }
    if (l.memory_reservation) {
        const std::uint64_t bytes = parse_size(*l.memory_reservation, "memory_reservation");
        const std::size_t m = member("memory", "memory_reservation");
        if (v2_of(m))
            writes.push_back(
                {m, {{"memory.low", size_text(bytes)}}, "memory_reservation", expect_bytes(bytes, false)});
        else
            writes.push_back(
                {m,
                 {{"memory.soft_limit_in_bytes", bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                 "memory_reservation",
                 expect_bytes(bytes, true)});
    }
    if (l.cpus) {
        const double cpus = *l.cpus;
        const auto period = l.cpu_period.count();
        if (period < 1000 || period > 1'000'000)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_period",
                        "bad period " + std::to_string(period) + "us: the kernel takes 1000us to 1s");
        // Written so that NaN and infinity fail too (<cmath> costs every user's build).
        if (!(cpus > 0 && cpus <= 1e6))
            throw error(step::set_cgroup_limit, EINVAL, "cpus",
                        "bad CPU count " + std::to_string(cpus) + ": give a positive number of CPUs, e.g. 0.5");
        const auto quota = static_cast<long long>(cpus * static_cast<double>(period) + 0.5);  // positive: rounds to nearest
        if (quota < 1000)
            throw error(step::set_cgroup_limit, EINVAL, "cpus",
                        std::to_string(cpus) + " CPUs is a quota of " + std::to_string(quota) + "us per "
                            + std::to_string(period) + "us period; the kernel's smallest quota is 1000us");
        const std::size_t m = member("cpu", "cpus");
        if (v2_of(m)) {
            const std::string value = std::to_string(quota) + " " + std::to_string(period);
            writes.push_back({m, {{"cpu.max", value}}, "cpus", expect_text(value)});
        } else {
            writes.push_back({m,
                              {{"cpu.cfs_period_us", std::to_string(period)}},
                              "cpu_period",
                              expect_number(static_cast<std::uint64_t>(period))});
            writes.push_back({m,
                              {{"cpu.cfs_quota_us", std::to_string(quota)}},
                              "cpus",
                              expect_number(static_cast<std::uint64_t>(quota))});
        }
    }
    if (l.cpu_weight) {
        const std::uint32_t w = *l.cpu_weight;
        if (w < 1 || w > 10000)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_weight",
                        "bad weight " + std::to_string(w) + ": 1 to 10000");
        const std::size_t m = member("cpu", "cpu_weight");
        if (v2_of(m)) {
            writes.push_back({m, {{"cpu.weight", std::to_string(w)}}, "cpu_weight", expect_number(w)});
        } else {
            // v1 shares: 1024 is the default as 100 is in v2.
            const std::uint64_t shares = std::max<std::uint64_t>(2, std::uint64_t{w} * 1024 / 100);
            writes.push_back({m, {{"cpu.shares", std::to_string(shares)}}, "cpu_weight", expect_number(shares)});
        }
    }
    if (l.cpu_shares) {
        const std::uint64_t shares = *l.cpu_shares;
        if (l.cpu_weight)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_shares",
                        "cpu_shares and cpu_weight are the same share in two scales: give one");
        if (shares < 2 || shares > 262144)
            throw error(step::set_cgroup_limit, EINVAL, "cpu_shares",
                        "bad shares " + std::to_string(shares) + ": 2 to 262144");
        const std::size_t m = member("cpu", "cpu_shares");
        if (v2_of(m)) {
            const std::uint64_t w = 1 + (shares - 2) * 9999 / 262142;
            writes.push_back({m, {{"cpu.weight", std::to_string(w)}}, "cpu_shares", expect_number(w)});
        } else {
            writes.push_back({m, {{"cpu.shares", std::to_string(shares)}}, "cpu_shares", expect_number(shares)});
        }
    }
    struct cpuset_limit {
        const char* field;
        const char* file;
        const std::optional<std::string>* value;
    };
    for (const auto& [field, file, value] : {cpuset_limit{"cpuset_cpus", "cpuset.cpus", &l.cpuset_cpus},
                                             cpuset_limit{"cpuset_mems", "cpuset.mems", &l.cpuset_mems}}) {
        if (!*value) continue;
        std::vector<unsigned> wanted = parse_cpu_list(**value, field);
        if (wanted.empty())
            throw error(step::set_cgroup_limit, EINVAL, field, "an empty list would leave the group nowhere to run");
        const std::size_t m = member("cpuset", field);
        writes.push_back({m, {{file, std::string(cgroup_trim(**value))}}, field, expect_cpu_list(std::move(wanted))});
    }
    if (l.pids_max) {
        const std::size_t m = member("pids", "pids_max");
        writes.push_back({m, {{"pids.max", std::to_string(*l.pids_max)}}, "pids_max", expect_number(*l.pids_max)});
    }
    if (l.io_weight) {
        const std::uint32_t w = *l.io_weight;
        const std::size_t m = member("io", "io_weight");
        if (w < 1 || w > (v2_of(m) ? 10000U : 1000U))
            throw error(step::set_cgroup_limit, EINVAL, "io_weight",
                        "bad weight " + std::to_string(w) + (v2_of(m) ? ": 1 to 10000" : ": 1 to 1000 on cgroup v1"));
        const auto check = [w](std::string_view back) -> std::optional<std::string> {
            if (keyed_value(back, "default") == w || parse_decimal(cgroup_trim(back)) == w) return std::nullopt;
            return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
        };
        const std::string value = std::to_string(w);
        if (v2_of(m))
            writes.push_back(
                {m, {{"io.weight", "default " + value}, {"io.bfq.weight", "default " + value}}, "io_weight", check});
        else
            writes.push_back({m, {{"blkio.bfq.weight", value}, {"blkio.weight", value}}, "io_weight", check});
    }
    for (const auto& d : l.io_max) {
        const std::size_t m = member("io", "io_max");
        const std::string device = resolve_block_device(d.device);
        struct key {
            const char* v2;
            const char* v1_file;
            std::optional<std::uint64_t> value;
        };
        const key keys[] = {
            {"rbps", "blkio.throttle.read_bps_device",
             d.read_bps ? std::optional(parse_size(*d.read_bps, "io_max read_bps")) : std::nullopt},
            {"wbps", "blkio.throttle.write_bps_device",
             d.write_bps ? std::optional(parse_size(*d.write_bps, "io_max write_bps")) : std::nullopt},
            {"riops", "blkio.throttle.read_iops_device", d.read_iops},
            {"wiops", "blkio.throttle.write_iops_device", d.write_iops},
        };
        if (v2_of(m)) {
            std::string value = device;
            std::vector<std::pair<std::string, std::uint64_t>> wanted;
            for (const auto& k : keys)
                if (k.value) {
                    value += std::string(" ") + k.v2 + "=" + size_text(*k.value);
                    wanted.emplace_back(k.v2, *k.value);
                }
            if (wanted.empty())
                throw error(step::set_cgroup_limit, EINVAL, d.device, "io_max: no limit given for the device");
            writes.push_back({m,
                              {{"io.max", value}},
                              "io_max",
                              [device, wanted](std::string_view back) -> std::optional<std::string> {
                                  for (const auto& [k, v] : wanted) {
                                      const auto got = io_max_value(back, device, k);
                                      if (got.value_or(cgroup_unlimited) != v)
                                          return "the kernel kept '" + std::string(cgroup_trim(back)) + "' for " + k;
                                  }
                                  return std::nullopt;
                              }});
        } else {
            bool any = false;
            for (const auto& k : keys) {
                if (!k.value) continue;
                any = true;
                // v1 takes 0 as "no limit" and then lists no line for the device.
                const std::uint64_t v = *k.value == cgroup_unlimited ? 0 : *k.value;
                writes.push_back({m,
                                  {{k.v1_file, device + " " + std::to_string(v)}},
                                  "io_max",
                                  [device, v](std::string_view back) -> std::optional<std::string> {
                                      std::optional<std::uint64_t> got;
                                      for (std::string_view line : cgroup_split(back, '\n')) {
                                          const auto w = cgroup_words(line);
                                          if (w.size() == 2 && w[0] == device) got = parse_decimal(w[1]);
                                      }
                                      if (got.value_or(0) == v) return std::nullopt;
                                      return "the kernel kept '" + std::string(cgroup_trim(back)) + "'";
                                  }});
            }
            if (!any) throw error(step::set_cgroup_limit, EINVAL, d.device, "io_max: no limit given for the device");
        }
    }
    for (const auto& h : l.hugepages) {
        const std::uint64_t page = hugepage_size(h.page_size);
        const std::uint64_t bytes = parse_size(h.max, "hugepages " + h.page_size);
        const std::size_t m = member("hugetlb", "hugepages");
        // The kernel keeps whole huge pages, and "max" as a count of small
        // pages, rounded down to whole huge pages too.
        const std::uint64_t expected = bytes == cgroup_unlimited ? bytes : bytes / page * page;
        const auto check = [expected, page](std::string_view back) -> std::optional<std::string> {
            auto got = parse_limit_value(back);
            if (got && *got != cgroup_unlimited && *got > v1_memory_unlimited() - page) got = cgroup_unlimited;
            if (got == expected) return std::nullopt;
            return "the kernel kept '" + std::string(cgroup_trim(back)) + "' instead of " + size_text(expected);
        };
        const std::string what = "hugepages " + h.page_size;
        if (v2_of(m))
            writes.push_back({m, {{"hugetlb." + h.page_size + ".max", size_text(bytes)}}, what, check});
        else
            writes.push_back({m,
                              {{"hugetlb." + h.page_size + ".limit_in_bytes",
                                bytes == cgroup_unlimited ? "-1" : std::to_string(bytes)}},
                              what,
                              check});
    }
    if (!l.devices.empty()) {
        // The v2 program's jumps are 16 bits; real lists have tens of rules.
        if (l.devices.size() > 2048)
            throw error(step::set_cgroup_limit, EINVAL, "devices",
                        std::to_string(l.devices.size()) + " rules; at most 2048");
        for (std::size_t i = 0; i < l.devices.size(); ++i) check_device_rule(l.devices[i], i);
        const std::size_t m = member("devices", "devices");
        if (v2_of(m)) {
            writes.push_back({m, {}, "devices", {}, [rules = l.devices](int fd, const std::string& dir) {
                                  attach_device_program(fd, dir, rules);
                              }});
        } else {
            // devices.allow and devices.deny are write-only: the kernel's
            // answer to each write is the check.
            for (std::size_t i = 0; i < l.devices.size(); ++i)
                writes.push_back({m,
                                  {{l.devices[i].allow ? "devices.allow" : "devices.deny",
                                    device_rule_v1_text(l.devices[i])}},
                                  "devices[" + std::to_string(i) + "]",
                                  {}});
        }
    }
    return writes;
}

// This process's own pid and start time, for group names.
template <class = void>
inline group_name own_group_name(std::string_view prefix) {
    static std::atomic<std::uint64_t> counter{0};
    group_name n;
    n.prefix = std::string(prefix);
    n.pid = static_cast<std::uint64_t>(sys::getpid());
    if (const auto start = process_start(static_cast<long>(n.pid))) n.start_time = start->first;
    n.counter = counter.fetch_add(1, std::memory_order_relaxed);
    n.random = random_hex();
    return n;
}

template <class = void>
inline std::string duration_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace detail

// Moves the calling process (all its threads) into a leaf cgroup named
// "ctr-leaf" below its own v2 cgroup, creating it if needed, and returns the
// leaf's directory. This is the explicit step the cgroup v2 "no internal
// processes" rule asks for: a cgroup with processes of its own cannot enable
// controllers for its children, so a process that wants to make groups
// below its own cgroup (a delegated subtree, say) first leaves it for a
// leaf. Groups made afterwards by this process and its children go beside
// the leaf. The leaf stays: it is where this process now lives. Throws
// (step attach_to_cgroup) where there is no usable cgroup v2 hierarchy.
template <class = void>
inline std::string move_self_to_leaf() {
    namespace d = detail;
    const auto layout = d::detect_cgroup_layout();
    const auto* h = layout.v2();
    if (!h || !h->usable())
        throw error(
            step::attach_to_cgroup, ENOTSUP, {},
            "moving to a leaf is a cgroup v2 step, and there is no usable v2 hierarchy (" + layout.describe() + ")");
    const std::string leaf = h->place_dir + "/" + std::string(d::cgroup_leaf_name);
    if (const long r = d::sys::mkdirat(AT_FDCWD, leaf.c_str(), 0755); r < 0 && r != -EEXIST)
        throw error(step::create_cgroup, static_cast<int>(-r), leaf);
    const std::string pid = std::to_string(d::sys::getpid());
    if (const long r = d::write_file_at(AT_FDCWD, (leaf + "/cgroup.procs").c_str(), pid); r < 0)
        throw error(step::attach_to_cgroup, static_cast<int>(-r), leaf + "/cgroup.procs", "pid " + pid);
    return leaf;
}

namespace detail {
// The error for a group this process may not create (EACCES, EPERM): it
// names what the caller asked for and the controller that needs it, rather
// than whichever hierarchy happened to be tried first, and the fix.
template <class = void>
inline error refused_group_error(const error& failed, const options& opts, planner& plan,
                                 const cgroup_layout_info& layout, const std::string& name) {
    std::vector<std::pair<std::string, std::string>> asked;  // controller, what needs it
    for (const auto& [controller, what] : limit_controllers(opts.limits))
        asked.emplace_back(std::string(controller), std::string(what));
    for (const auto& c : opts.controllers) asked.emplace_back(c, "options::controllers");
    std::string path = failed.path();
    std::string why;
    const std::string user = "this user (uid " + std::to_string(::geteuid()) + ")";
    for (const auto& [controller, what] : asked) {
        const auto member = plan.where(controller);
        if (!member) continue;
        const auto& h = layout.hierarchies[plan.members()[*member].hierarchy];
        if (::access(h.place_dir.c_str(), W_OK) == 0) continue;
        path = h.place_dir + "/" + name;
        why = what + " needs the " + controller + " controller, and " + user + " may not create a group in " +
              h.place_dir;
        break;
    }
    if (why.empty())
        why = "the group is made in every hierarchy it uses, also for accounting (options::accounting) and, on "
              "cgroup v1, the freezer; " + user + " may not create one in " +
              failed.path().substr(0, failed.path().rfind('/'));
    why += ": run as root, or in a cgroup delegated to this user (on cgroup v2: systemd-run --user --scope -p "
           "Delegate=yes COMMAND; a cgroup v1 hierarchy only root can delegate, by giving a group to the user)";
    return error(failed.step(), failed.code().value(), path, why);
}
}  // namespace detail

// For group::open.
struct open_options {
    // Whether the destructor removes the group, as for one it made.
    bool remove_on_destruction = false;
    std::chrono::milliseconds remove_timeout{5000};
};

// A cgroup of its own, in every hierarchy it needs, below the caller's
// cgroup. Move-only. The destructor kills what is left inside, waits until
// it is empty and removes it, quietly; remove() does the same and reports.
// One thread at a time, like the standard containers.
//
// A class template with one instantiation, `group`, for the compile cost of
// every includer: a destructor is never a template, so a plain class's
// destructor, and the whole removal it calls, would be compiled in every
// translation unit that includes this header. As a template's member it is
// compiled only where a program destroys a group (README "Compile cost").
template <class>
class [[nodiscard]] basic_group {
public:
    // Creates the group and sets its limits; throws ctr::error naming the
    // step and path, and leaves nothing behind when it does.
    template <class = void>
    explicit basic_group(const options& opts = {}) : remove_timeout_(opts.remove_timeout) {
        namespace d = detail;
        d::check_group_prefix(opts.prefix);
        const d::cgroup_layout_info layout = d::detect_cgroup_layout();
        layout_ = layout.kind;
        layout_text_ = layout.describe();
        if (layout.kind == cgroup_layout::none)
            throw error(step::cgroup_layout, ENOTSUP, "/proc/self/mountinfo", "no cgroup file system is mounted");
        const bool v2_only = layout.kind == cgroup_layout::v2 || opts.unified_only;
        if (opts.unified_only && !layout.v2())
            throw error(step::cgroup_layout, ENOTSUP, {},
                        "unified_only needs a cgroup2 hierarchy (" + layout_text_ + ")");

        d::planner plan(layout, v2_only);
        for (const auto& c : opts.controllers) plan.use(c, true, step::enable_controllers, c);
        if (opts.accounting)
            for (std::string_view c : {"memory", "cpu", "cpuacct", "pids"})
                plan.use(c, false, step::enable_controllers, c);
        // The v1 freezer is how kill_all stops a process tree from forking.
        if (!v2_only) plan.use("freezer", false, step::enable_controllers, "freezer");

        for (const auto& [controller, what] : d::limit_controllers(opts.limits))
            plan.use(controller, true, step::set_cgroup_limit, what, what == "devices");
        plan.finish();
        // Every value is checked here, before anything exists.
        std::vector<bool> is_v2;
        for (const auto& m : plan.members()) is_v2.push_back(layout.hierarchies[m.hierarchy].v2);
        const std::vector<d::limit_write> writes = d::plan_limits(opts.limits, plan, layout, is_v2);

        if (!opts.path.empty()) d::group_path_components(opts.path);
        const bool absolute = !opts.path.empty() && opts.path.front() == '/';
        for (const auto& m : plan.members()) {
            const auto& h = layout.hierarchies[m.hierarchy];
            // An absolute path starts at the mount's root, where the caller
            // is not, so moving it to a leaf would not help there.
            if (h.v2)
                enable_controllers(absolute ? h.mount_point : h.place_dir, absolute ? h.mount_root : h.place_path,
                                   m.controllers, opts.move_caller_to_leaf && !absolute);
        }

        name_ = opts.path.empty() ? d::format_group_name(d::own_group_name(opts.prefix)) : opts.path;
        try {
            for (const auto& m : plan.members())
                create_member(layout.hierarchies[m.hierarchy], m, opts.path, opts.join_existing);
            for (auto& m : members_) {
                if (!m.v2 && m.created && m.has("cpuset")) inherit_cpuset(m.fd.get(), m.dir);
                if (!m.created) owned_ = false;
            }
            for (const auto& w : writes) apply(w);
        } catch (const error& e) {
            discard();
            if (e.step() == step::create_cgroup && (e.code().value() == EACCES || e.code().value() == EPERM))
                throw d::refused_group_error(e, opts, plan, layout, name_);
            throw;
        } catch (...) {
            discard();
            throw;
        }
        if (opts.limits.memory_max) {
            const std::uint64_t bytes = d::parse_size(*opts.limits.memory_max, "memory_max");
            if (bytes != d::cgroup_unlimited) memory_max_ = bytes / d::page_size() * d::page_size();
        }
    }

    basic_group(basic_group&& other) noexcept
        : name_(std::move(other.name_)),
          members_(std::move(other.members_)),
          layout_(other.layout_),
          layout_text_(std::move(other.layout_text_)),
          memory_max_(other.memory_max_),
          remove_timeout_(other.remove_timeout_),
          owned_(other.owned_) {
        other.members_.clear();
    }
    basic_group& operator=(basic_group&& other) noexcept {
        if (this != &other) {
            if (owned_) quiet_remove();
            members_.clear();
            owned_ = other.owned_;
            name_ = std::move(other.name_);
            members_ = std::move(other.members_);
            other.members_.clear();
            layout_ = other.layout_;
            layout_text_ = std::move(other.layout_text_);
            memory_max_ = other.memory_max_;
            remove_timeout_ = other.remove_timeout_;
        }
        return *this;
    }
    basic_group(const basic_group&) = delete;
    basic_group& operator=(const basic_group&) = delete;
    // Removes the group (quietly) when the handle owns it: one it created.
    // A group from open() or join_existing is left as it is; remove() is
    // how to remove those.
    ~basic_group() {
        if (owned_) quiet_remove();
    }

    // Finds the group at `path` (as options::path reads it: "/a/b" from the
    // root of each hierarchy as mounted, "a/b" below this process's own
    // cgroup) in every hierarchy that has it, for another invocation of a
    // runtime (kill, state, delete) than the one that made it. Everything
    // works on it: pids(), kill_all(), freeze(), read_stats(), remove().
    // Limits are not read back (memory_max_bytes() is empty). Throws
    // (cgroup_layout, ENOENT) when no hierarchy has the group.
    template <class = void>
    [[nodiscard]] static basic_group open(std::string_view path, const open_options& opts = {}) {
        namespace d = detail;
        d::group_path_components(path);
        const d::cgroup_layout_info layout = d::detect_cgroup_layout();
        std::vector<d::cgroup_member> members;
        std::string looked;
        for (const auto& h : layout.hierarchies) {
            if (!h.usable()) continue;
            const d::group_location at = d::locate_group(h, path);
            const long fd = d::open_directory(AT_FDCWD, at.dir.c_str());
            looked += " " + at.dir;
            if (fd == -ENOENT) continue;
            if (fd < 0) throw error(step::cgroup_layout, static_cast<int>(-fd), at.dir, "opening the group");
            d::cgroup_member m = d::found_member(h, at.cgroup_path, at.dir, unique_fd(static_cast<int>(fd)));
            // The v2 directory first, as in a group made here.
            members.insert(h.v2 ? members.begin() : members.end(), std::move(m));
        }
        if (members.empty())
            throw error(step::cgroup_layout, ENOENT, std::string(path),
                        "no group at this path in any hierarchy (looked for" + looked + "; " + layout.describe() + ")");
        basic_group g(adopt_tag{}, std::string(path), std::move(members), layout.kind, layout.describe(),
                opts.remove_timeout);
        g.owned_ = opts.remove_on_destruction;
        return g;
    }

    // Lets go of the group without removing it: its directories (and what
    // runs in them) stay, and the handle is no longer valid(). For a
    // runtime whose `create` exits before the container does; open() finds
    // the group again.
    template <class = void>
    void release() noexcept {
        members_.clear();
        owned_ = true;
    }
    // Whether the destructor removes the group (see ~group).
    template <class = void>
    bool owns() const noexcept { return owned_ && valid(); }

    // False once removed or moved from.
    template <class = void>
    bool valid() const noexcept { return !members_.empty(); }
    template <class = void>
    const std::string& name() const noexcept { return name_; }
    template <class = void>
    cgroup_layout layout() const noexcept { return layout_; }

    // The group's main directory, for messages: the v2 one when there is
    // one, else the first v1 one.
    template <class = void>
    const std::string& path() const noexcept {
        static const std::string none;
        return members_.empty() ? none : members_.front().dir;
    }
    // The directory that carries `controller` ("memory", "cpu", ...); throws
    // if the group does not use it.
    template <class = void>
    const std::string& path(std::string_view controller) const {
        for (const auto& m : members_) {
            if (m.v2) {
                const auto name = detail::v2_controller_name(controller);
                if (name && (name->empty() || m.has(*name))) return m.dir;
            } else if (m.has(detail::v1_controller_name(controller))) {
                return m.dir;
            }
        }
        throw error(step::cgroup_layout, ENOENT, std::string(controller),
                    "group " + name_ + " does not use this controller (" + layout_text_ + ")");
    }
    // Every directory of the group, one per hierarchy.
    template <class = void>
    std::vector<std::string> paths() const {
        std::vector<std::string> out;
        for (const auto& m : members_) out.push_back(m.dir);
        return out;
    }

    // The memory limit the kernel holds (rounded to pages), if one was set.
    template <class = void>
    std::optional<std::uint64_t> memory_max_bytes() const noexcept { return memory_max_; }

    // For CLONE_INTO_CGROUP: an O_RDONLY|O_DIRECTORY fd of the group's v2
    // directory when that is all the group is (pure v2, or unified_only);
    // -1 otherwise. Owned by the group.
    template <class = void>
    int clone_into_fd() const noexcept {
        return members_.size() == 1 && members_.front().v2 ? members_.front().fd.get() : -1;
    }
    // True when a child must be attached by pid (attach()) before it execs,
    // because clone_into_fd() cannot place it: v1 and hybrid layouts.
    template <class = void>
    bool needs_attach_before_exec() const noexcept { return valid() && clone_into_fd() < 0; }

    // Moves a process (all its threads) into the group, in every hierarchy.
    template <class = void>
    void attach(pid_t pid) {
        require_valid(step::attach_to_cgroup);
        const std::string text = std::to_string(pid);
        for (const auto& m : members_)
            if (const long r = detail::write_file_at(m.fd.get(), "cgroup.procs", text); r < 0)
                throw error(step::attach_to_cgroup, static_cast<int>(-r), m.file("cgroup.procs"),
                            "pid " + text + (r == -ESRCH ? ": no such process" : ""));
    }
    // The same for a process given by its pidfd. Attaching goes by pid (no
    // kernel interface takes a pidfd); the pidfd is checked afterwards, so a
    // process that was already reaped is reported rather than its pid's
    // next owner attached silently.
    template <class = void>
    void attach_pidfd(int pidfd) {
        require_valid(step::attach_to_cgroup);
        const auto info = detail::read_small_file("/proc/self/fdinfo/" + std::to_string(pidfd));
        const auto pid = info ? detail::keyed_value(*info, "Pid:") : std::nullopt;
        if (!pid || *pid == 0)
            throw error(step::attach_to_cgroup, info ? ESRCH : EBADF, "pidfd " + std::to_string(pidfd),
                        info ? "the process has exited" : "not an open pidfd");
        attach(static_cast<pid_t>(*pid));
        if (detail::sys::pidfd_send_signal(pidfd, 0) == -ESRCH)
            throw error(step::attach_to_cgroup, ESRCH, "pidfd " + std::to_string(pidfd),
                        "the process exited while it was being attached");
    }

    // The pids in the group (and in any cgroups below it), as this process's
    // pid namespace sees them.
    template <class = void>
    std::vector<pid_t> pids() const {
        std::vector<pid_t> out;
        if (!valid()) return out;
        const auto& m = tracker();
        std::vector<long> found;
        if (const long r = detail::processes_below(m.fd.get(), found); r < 0)
            throw error(step::read_cgroup_stat, static_cast<int>(-r), m.file("cgroup.procs"));
        for (long p : found) out.push_back(static_cast<pid_t>(p));
        return out;
    }

    // Stops every process in the group: v2 cgroup.freeze, waiting for
    // cgroup.events to say frozen; v1 freezer.state FROZEN. Throws
    // (freeze_cgroup) when the layout has no freezer or `timeout` passes.
    template <class = void>
    void freeze(std::chrono::milliseconds timeout = std::chrono::seconds(5)) { set_frozen(true, timeout); }
    template <class = void>
    void thaw(std::chrono::milliseconds timeout = std::chrono::seconds(5)) { set_frozen(false, timeout); }

    // SIGKILL for everything in the group, including processes that forked
    // away from their parent. v2: cgroup.kill (Linux 5.14+), which the
    // kernel makes race-free. v1 (and v2 before 5.14): freeze, SIGKILL every
    // listed process, thaw, and again until the group lists nothing or
    // `timeout` passes (then step kill_cgroup, ETIMEDOUT).
    template <class = void>
    void kill_all(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        require_valid(step::kill_cgroup);
        kill_until(detail::cgroup_clock::now() + timeout);
    }

    // Waits until no process is left in the group; false if `timeout`
    // passes first. v2 waits on cgroup.events (populated 0) with poll; v1
    // has no such event and looks at cgroup.procs every few milliseconds.
    template <class = void>
    bool wait_empty(std::chrono::milliseconds timeout) {
        require_valid(step::wait);
        return wait_empty_until(detail::cgroup_clock::now() + timeout);
    }

    template <class = void>
    stats read_stats() const { return read_selected(false); }
    // Only what a run's result takes from the group (process::result):
    // peak memory, OOM kills, user and system CPU time. spawn reads them
    // before and after every child it places in the group; on a v1 host
    // that is 4 files where read_stats() reads 11.
    template <class = void>
    stats read_run_figures() const { return read_selected(true); }
    // The OOM-kill count alone: spawn reads it before every child it places
    // in the group, so it reads only the one file the figure is in.
    template <class = void>
    std::optional<std::uint64_t> oom_kills() const {
        std::optional<std::uint64_t> kills;
        for (const auto& m : members_) {
            if (!m.has("memory")) continue;
            std::string text;
            bool present = false;
            read_into(m, m.v2 ? "memory.events" : "memory.oom_control", text, present);
            if (present) fill(kills, detail::keyed_value(text, "oom_kill"));
        }
        return kills;
    }

    // Kills what is left, waits until the group is empty and removes its
    // directories, retrying rmdir on EBUSY, all within options::remove_timeout.
    // Throws (remove_cgroup) on failure; the group stays valid then, and
    // remove() or the destructor may try again.
    template <class = void>
    void remove() {
        if (!valid()) return;
        const auto deadline = detail::cgroup_clock::now() + remove_timeout_;
        kill_until(deadline);
        if (!wait_empty_until(deadline)) {
            std::string listed;
            // Appended: see kill_until.
            for (pid_t p : pids()) listed.append(1, ' ').append(std::to_string(p));
            throw error(step::remove_cgroup, EBUSY, path(),
                        "processes still inside after " + detail::duration_text(remove_timeout_) + ":" + listed);
        }
        remove_directories(deadline);
    }

private:
    template <class> friend std::size_t reap_stale(std::string_view prefix);
    struct adopt_tag {};

    // Takes over directories found on disk (reap_stale).
    template <class = void>
    basic_group(adopt_tag, std::string name, std::vector<detail::cgroup_member> members, cgroup_layout layout,
          std::string layout_text, std::chrono::milliseconds timeout)
        : name_(std::move(name)),
          members_(std::move(members)),
          layout_(layout),
          layout_text_(std::move(layout_text)),
          remove_timeout_(timeout) {}

    template <class = void>
    void require_valid(ctr::step s) const {
        if (!valid()) throw error(s, EINVAL, name_, "the group was removed or moved from");
    }

    // Where the group's processes are listed: v2 if the group is there, else
    // the v1 freezer hierarchy (which kill_all freezes), else any.
    template <class = void>
    const detail::cgroup_member& tracker() const {
        for (const auto& m : members_)
            if (m.v2) return m;
        for (const auto& m : members_)
            if (m.has("freezer")) return m;
        return members_.front();
    }
    template <class = void>
    const detail::cgroup_member* v2_member() const {
        for (const auto& m : members_)
            if (m.v2) return &m;
        return nullptr;
    }
    template <class = void>
    const detail::cgroup_member* v1_freezer() const {
        for (const auto& m : members_)
            if (!m.v2 && m.has("freezer")) return &m;
        return nullptr;
    }

    // Enables `wanted` for the children of the v2 cgroup at `dir` (`shown`
    // as /proc/self/cgroup names it).
    template <class = void>
    void enable_controllers(const std::string& dir, const std::string& shown, const std::vector<std::string>& wanted,
                            bool move_caller) {
        namespace d = detail;
        if (wanted.empty()) return;
        const std::string file = dir + "/cgroup.subtree_control";
        const auto current = d::read_first_line(file);
        if (!current) throw error(step::enable_controllers, EIO, file, "cannot read it");
        const auto enabled = d::controller_list(*current);
        std::string text;
        for (const auto& c : wanted)
            if (std::find(enabled.begin(), enabled.end(), c) == enabled.end()) text += (text.empty() ? "+" : " +") + c;
        if (text.empty()) return;
        long r = d::write_file_at(AT_FDCWD, file.c_str(), text);
        if (r == -EBUSY && move_caller) {
            move_self_to_leaf();
            r = d::write_file_at(AT_FDCWD, file.c_str(), text);
        }
        if (r == -EBUSY)
            throw error(step::enable_controllers, EBUSY, file,
                        "writing '" + text + "': " + shown +
                            " has processes of its own, and cgroup v2 lets only a cgroup without processes hand "
                            "controllers to its children; set options::move_caller_to_leaf, or call "
                            "cgroup::move_self_to_leaf() first" +
                            (move_caller ? " (this process was moved, so others are still there)" : ""));
        if (r < 0) throw error(step::enable_controllers, static_cast<int>(-r), file, "writing '" + text + "'");
    }

    // Makes the group's directory in one hierarchy: below the own cgroup
    // with the generated name, or at `path` with any missing parents (each
    // given the parent's cpuset on v1, the controllers on v2). Parents it
    // made are removed again if it fails.
    template <class = void>
    void create_member(const detail::cgroup_hierarchy& h, const detail::member_plan& plan, const std::string& path,
                       bool join_existing) {
        namespace d = detail;
        d::cgroup_member m;
        m.v2 = h.v2;
        m.hierarchy_id = h.id;
        m.controllers = h.v2 ? plan.controllers : h.controllers;
        const auto why_not = [&](long r, const std::string& parent) {
            if (r == -EACCES || r == -EPERM)
                return "no write access to " + parent + ": run as root, or in a cgroup delegated to this user";
            if (r == -EROFS)
                return std::string(
                    "the cgroup file system is read-only here (a container without cgroup delegation?)");
            return std::string{};
        };
        std::string parent = h.place_dir;
        if (path.empty()) {
            m.cgroup_path = d::join_cgroup_path(h.place_path, name_);
            m.dir = h.place_dir + "/" + name_;
        } else {
            const d::group_location at = d::locate_group(h, path);
            m.cgroup_path = at.cgroup_path;
            m.dir = at.dir;
            parent = at.base_dir;
            std::string shown = at.base_path;
            try {
                for (std::size_t i = 0; i + 1 < at.components.size(); ++i) {
                    const std::string above = parent;
                    parent += "/" + at.components[i];
                    shown = d::join_cgroup_path(shown, at.components[i]);
                    const long r = d::sys::mkdirat(AT_FDCWD, parent.c_str(), 0755);
                    if (r < 0 && r != -EEXIST)
                        throw error(step::create_cgroup, static_cast<int>(-r), parent,
                                    "making a parent of " + m.dir + (why_not(r, above).empty() ? "" : ": ")
                                        + why_not(r, above));
                    if (r == 0) {
                        m.made_parents.push_back(parent);
                        if (!h.v2 && h.has("cpuset")) {
                            const long fd = d::open_directory(AT_FDCWD, parent.c_str());
                            if (fd < 0) throw error(step::create_cgroup, static_cast<int>(-fd), parent, "opening it");
                            unique_fd owner(static_cast<int>(fd));
                            inherit_cpuset(owner.get(), parent);
                        }
                    }
                    if (h.v2) enable_controllers(parent, shown, plan.controllers, false);
                }
            } catch (...) {
                remove_made_parents(m);
                throw;
            }
        }
        if (const long r = d::sys::mkdirat(AT_FDCWD, m.dir.c_str(), 0755); r == -EEXIST && join_existing) {
            m.created = false;
        } else if (r < 0) {
            remove_made_parents(m);
            if (r == -EEXIST && !path.empty())
                throw error(step::create_cgroup, EEXIST, m.dir,
                            "a cgroup exists at this path already: remove it (group::open(path).remove()), choose "
                            "another path, or set options::join_existing to use it");
            throw error(step::create_cgroup, static_cast<int>(-r), m.dir, why_not(r, parent));
        }
        const long fd = d::open_directory(AT_FDCWD, m.dir.c_str());
        if (fd < 0) {
            if (m.created) d::sys::unlinkat(AT_FDCWD, m.dir.c_str(), AT_REMOVEDIR);
            remove_made_parents(m);
            throw error(step::create_cgroup, static_cast<int>(-fd), m.dir, "cannot open the new group");
        }
        m.fd.reset(static_cast<int>(fd));
        members_.push_back(std::move(m));
    }

    // Removes the parents a failed creation made, deepest first; a parent
    // something else has meanwhile used stays.
    template <class = void>
    static void remove_made_parents(detail::cgroup_member& m) noexcept {
        for (std::size_t i = m.made_parents.size(); i-- > 0;)
            detail::sys::unlinkat(AT_FDCWD, m.made_parents[i].c_str(), AT_REMOVEDIR);
        m.made_parents.clear();
    }

    // A new v1 cpuset has no CPUs and no memory nodes, and no process can
    // join it until it has both: start from the parent's.
    template <class = void>
    static void inherit_cpuset(int dirfd, const std::string& dir) {
        namespace d = detail;
        const std::string above = dir.substr(0, dir.rfind('/'));
        for (const char* kind : {"cpus", "mems"}) {
            std::string own;
            const std::string file = std::string("cpuset.") + kind;
            if (d::read_file_at(dirfd, file.c_str(), own) == 0 && !d::cgroup_trim(own).empty()) continue;
            auto parent = d::read_first_line(above + "/" + file);
            if (!parent || d::cgroup_trim(*parent).empty())
                parent = d::read_first_line(above + "/cpuset.effective_" + kind);
            if (!parent)
                throw error(step::set_cgroup_limit, EIO, above + "/" + file, "cannot read the parent's cpuset");
            if (const long r = d::write_file_at(dirfd, file.c_str(), d::cgroup_trim(*parent)); r < 0)
                throw error(step::set_cgroup_limit, static_cast<int>(-r), dir + "/" + file,
                            "copying the parent's '" + std::string(d::cgroup_trim(*parent)) + "'");
        }
    }

    template <class = void>
    void apply(const detail::limit_write& w) {
        namespace d = detail;
        const auto& m = members_[w.member];
        if (w.action) {
            w.action(m.fd.get(), m.dir);
            return;
        }
        long r = -ENOENT;
        std::string file, value;
        for (const auto& [f, v] : w.targets) {
            file = f;
            value = v;
            r = d::write_file_at(m.fd.get(), f.c_str(), v);
            if (r != -ENOENT) break;
        }
        if (r == -ENOENT)
            throw error(
                step::set_cgroup_limit, ENOENT, m.file(file),
                w.what + ": this kernel has no such file (the feature is not built in, or the kernel is too old)");
        if (r < 0)
            throw error(step::set_cgroup_limit, static_cast<int>(-r), m.file(file),
                        w.what + ": writing '" + value + "'");
        if (!w.check) return;
        std::string back;
        if (const long rr = d::read_file_at(m.fd.get(), file.c_str(), back); rr < 0)
            throw error(step::set_cgroup_limit, static_cast<int>(-rr), m.file(file), w.what + ": reading it back");
        if (const auto why = w.check(back))
            throw error(step::set_cgroup_limit, EIO, m.file(file), w.what + ": wrote '" + value + "', but " + *why);
    }

    template <class = void>
    void set_frozen(bool frozen, std::chrono::milliseconds timeout) {
        namespace d = detail;
        require_valid(step::freeze_cgroup);
        const auto deadline = d::cgroup_clock::now() + timeout;
        const char* verb = frozen ? "freezing" : "thawing";
        if (const auto* m = v2_member()) {
            const long r = d::write_file_at(m->fd.get(), "cgroup.freeze", frozen ? "1" : "0");
            if (r == -ENOENT)
                throw error(step::freeze_cgroup, ENOTSUP, m->file("cgroup.freeze"),
                            "cgroup.freeze needs Linux 5.2 or later");
            if (r < 0) throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("cgroup.freeze"), verb);
            const long w = d::wait_for_event(*m, "frozen", frozen ? 1 : 0, deadline);
            if (w < 0) throw error(step::freeze_cgroup, static_cast<int>(-w), m->file("cgroup.events"), verb);
            if (w == 0)
                throw error(step::freeze_cgroup, ETIMEDOUT, m->file("cgroup.events"),
                            std::string(verb) + ": not done after " + d::duration_text(timeout));
            return;
        }
        if (const auto* m = v1_freezer()) {
            const char* wanted = frozen ? "FROZEN" : "THAWED";
            auto pause = std::chrono::microseconds(100);
            for (;;) {
                // Writing FROZEN again retries a freeze that stalled in FREEZING.
                if (const long r = d::write_file_at(m->fd.get(), "freezer.state", wanted); r < 0)
                    throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("freezer.state"), verb);
                std::string state;
                if (const long r = d::freezer_state(*m, state); r < 0)
                    throw error(step::freeze_cgroup, static_cast<int>(-r), m->file("freezer.state"), verb);
                if (state == wanted) return;
                if (d::cgroup_clock::now() >= deadline) {
                    if (frozen) d::write_file_at(m->fd.get(), "freezer.state", "THAWED");
                    throw error(step::freeze_cgroup, ETIMEDOUT, m->file("freezer.state"),
                                std::string(verb) + ": still " + state + " after " + d::duration_text(timeout)
                                    + " (a process in uninterruptible sleep?)");
                }
                d::cgroup_nap(pause);
                pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
            }
        }
        throw error(step::freeze_cgroup, ENOTSUP, path(),
                    "no freezer here: the v1 freezer controller is not mounted (" + layout_text_ + ")");
    }

    // Freezes as far as the layout allows, for a short while; false when it
    // could not. The kill loop goes on either way.
    template <class = void>
    bool try_freeze(bool frozen) noexcept {
        namespace d = detail;
        const auto deadline = d::cgroup_clock::now() + std::chrono::milliseconds(frozen ? 50 : 1000);
        if (const auto* m = v2_member()) {
            if (d::write_file_at(m->fd.get(), "cgroup.freeze", frozen ? "1" : "0") < 0) return false;
            try {
                return d::wait_for_event(*m, "frozen", frozen ? 1 : 0, deadline) == 1;
            } catch (...) {
                return false;
            }
        }
        if (const auto* m = v1_freezer()) {
            const char* wanted = frozen ? "FROZEN" : "THAWED";
            for (auto pause = std::chrono::microseconds(100);;
                 pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(5))) {
                if (d::write_file_at(m->fd.get(), "freezer.state", wanted) < 0) return false;
                try {
                    std::string state;
                    if (d::freezer_state(*m, state) < 0) return false;
                    if (state == wanted) return true;
                } catch (...) {
                    return false;
                }
                if (d::cgroup_clock::now() >= deadline) return false;
                d::cgroup_nap(pause);
            }
        }
        return false;
    }

    template <class = void>
    void kill_until(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        // Killing everything would kill this process too.
        for (const auto& m : members_)
            if (d::process_in_member(static_cast<long>(d::sys::getpid()), m))
                throw error(step::kill_cgroup, EDEADLK, m.dir,
                            "this process is in the group itself; move it out before killing or removing the group");
        if (const auto* m = v2_member()) {
            const long r = d::write_file_at(m->fd.get(), "cgroup.kill", "1");
            if (r == 0) return;
            if (r != -ENOENT) throw error(step::kill_cgroup, static_cast<int>(-r), m->file("cgroup.kill"));
        }
        // No cgroup.kill: freeze (so nothing forks while the list is read),
        // signal each listed process, thaw (a v1-frozen process dies only
        // once thawed), until nothing is listed. An empty group is not
        // frozen at all: a v1 freeze costs milliseconds (it flips a static
        // key in the kernel).
        const auto& m = tracker();
        const auto list = [&](std::vector<long>& found) {
            found.clear();
            if (const long r = d::processes_below(m.fd.get(), found); r < 0)
                throw error(step::kill_cgroup, static_cast<int>(-r), m.file("cgroup.procs"));
        };
        std::vector<long> found;
        for (auto pause = std::chrono::microseconds(200);;
             pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10))) {
            list(found);
            if (found.empty()) return;
            if (d::cgroup_clock::now() >= deadline) {
                std::string listed;
                // Appended, not `" " + std::to_string(p)`: g++ 12 -O3 -Wrestrict (GCC bug 105329).
                for (long p : found) listed.append(1, ' ').append(std::to_string(p));
                throw error(step::kill_cgroup, ETIMEDOUT, m.dir, "processes survive SIGKILL:" + listed);
            }
            const bool froze = try_freeze(true);
            try {
                if (froze) list(found);
            } catch (...) {
                try_freeze(false);
                throw;
            }
            for (long pid : found) d::kill_member_process(pid, m);
            if (froze) try_freeze(false);
            d::cgroup_nap(pause);
        }
    }

    template <class = void>
    bool wait_empty_until(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        if (const auto* m = v2_member()) {
            const long r = d::wait_for_event(*m, "populated", 0, deadline);
            if (r < 0) throw error(step::wait, static_cast<int>(-r), m->file("cgroup.events"));
            return r == 1;
        }
        const auto& m = tracker();
        for (auto pause = std::chrono::microseconds(100);;
             pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10))) {
            std::vector<long> found;
            if (const long r = d::processes_below(m.fd.get(), found); r < 0)
                throw error(step::wait, static_cast<int>(-r), m.file("cgroup.procs"));
            if (found.empty()) return true;
            if (d::cgroup_clock::now() >= deadline) return false;
            d::cgroup_nap(pause);
        }
    }

    template <class = void>
    void remove_directories(detail::cgroup_clock::time_point deadline) {
        namespace d = detail;
        std::optional<error> first;
        std::vector<d::cgroup_member> left;
        for (auto& m : members_) {
            m.fd.reset();
            if (const long r = d::remove_cgroup_dir(m.dir, deadline); r < 0) {
                if (!first)
                    first.emplace(
                        step::remove_cgroup, static_cast<int>(-r), m.dir,
                        r == -EBUSY ? "still busy after " + d::duration_text(remove_timeout_) : std::string{});
                const long fd = d::open_directory(AT_FDCWD, m.dir.c_str());
                if (fd >= 0) m.fd.reset(static_cast<int>(fd));
                left.push_back(std::move(m));
            }
        }
        members_ = std::move(left);
        if (first) throw *first;
    }

    // Best effort, for the destructor and for failed construction.
    template <class = void>
    void quiet_remove() noexcept {
        try {
            remove();
        } catch (...) {
            // Nothing more can be done here; remove() is how to hear why.
        }
    }
    template <class = void>
    void discard() noexcept {
        const auto deadline = detail::cgroup_clock::now() + std::chrono::seconds(1);
        for (auto& m : members_) {
            m.fd.reset();
            if (m.created) detail::remove_cgroup_dir(m.dir, deadline);
            remove_made_parents(m);
        }
        members_.clear();
    }

    template <class = void>
    static void read_into(const detail::cgroup_member& m, const char* file, std::string& text, bool& present) {
        present = false;
        const long r = detail::read_file_at(m.fd.get(), file, text);
        if (r == -ENOENT) return;
        if (r < 0) throw error(step::read_cgroup_stat, static_cast<int>(-r), m.file(file));
        present = true;
    }
    template <typename T>
    static void fill(std::optional<T>& field, std::optional<T> value) {
        if (!field && value) field = value;
    }
    template <class = void>
    static std::optional<std::chrono::nanoseconds> micros(std::optional<std::uint64_t> v) {
        if (!v) return std::nullopt;
        return std::chrono::microseconds(*v);
    }
    template <class = void>
    static std::optional<std::chrono::nanoseconds> nanos(std::optional<std::uint64_t> v) {
        if (!v) return std::nullopt;
        return std::chrono::nanoseconds(*v);
    }

    template <class = void>
    stats read_selected(bool run_figures_only) const {
        stats s;
        for (const auto& m : members_) {
            if (m.v2)
                read_v2_stats(m, s, run_figures_only);
            else
                read_v1_stats(m, s, run_figures_only);
        }
        return s;
    }

    template <class = void>
    static void read_v2_stats(const detail::cgroup_member& m, stats& s, bool run_figures_only) {
        namespace d = detail;
        std::string text;
        bool present = false;
        // cpu.stat's usage lines exist in every v2 cgroup; the throttling
        // lines only with the cpu controller.
        read_into(m, "cpu.stat", text, present);
        if (present) {
            fill(s.cpu_usage, micros(d::keyed_value(text, "usage_usec")));
            fill(s.cpu_user, micros(d::keyed_value(text, "user_usec")));
            fill(s.cpu_system, micros(d::keyed_value(text, "system_usec")));
            if (m.has("cpu")) {
                fill(s.cpu_periods, d::keyed_value(text, "nr_periods"));
                fill(s.cpu_throttled_periods, d::keyed_value(text, "nr_throttled"));
                fill(s.cpu_throttled_time, micros(d::keyed_value(text, "throttled_usec")));
            }
        }
        if (m.has("memory")) {
            if (!run_figures_only) {
                read_into(m, "memory.current", text, present);
                if (present) fill(s.memory_current, d::parse_decimal(d::cgroup_trim(text)));
            }
            read_into(m, "memory.peak", text, present);
            if (present) fill(s.memory_peak, d::parse_decimal(d::cgroup_trim(text)));
            read_into(m, "memory.events", text, present);
            if (present) {
                fill(s.memory_max_events, d::keyed_value(text, "max"));
                fill(s.oom_events, d::keyed_value(text, "oom"));
                fill(s.oom_kills, d::keyed_value(text, "oom_kill"));
            }
        }
        if (m.has("pids") && !run_figures_only) read_pids(m, s);
    }

    template <class = void>
    static void read_v1_stats(const detail::cgroup_member& m, stats& s, bool run_figures_only) {
        namespace d = detail;
        std::string text;
        bool present = false;
        if (m.has("memory")) {
            if (!run_figures_only) {
                read_into(m, "memory.usage_in_bytes", text, present);
                if (present) fill(s.memory_current, d::parse_decimal(d::cgroup_trim(text)));
            }
            read_into(m, "memory.max_usage_in_bytes", text, present);
            if (present) fill(s.memory_peak, d::parse_decimal(d::cgroup_trim(text)));
            // memory_max_events stays empty: v1's memory.failcnt counts
            // failed charge attempts, not limit events, and reads 0 on
            // recent kernels even after an OOM kill at the limit.
            read_into(m, "memory.oom_control", text, present);
            if (present) fill(s.oom_kills, d::keyed_value(text, "oom_kill"));
        }
        if (m.has("cpuacct")) {
            if (!run_figures_only) {
                read_into(m, "cpuacct.usage", text, present);
                if (present) fill(s.cpu_usage, nanos(d::parse_decimal(d::cgroup_trim(text))));
            }
            read_into(m, "cpuacct.usage_user", text, present);
            if (present) fill(s.cpu_user, nanos(d::parse_decimal(d::cgroup_trim(text))));
            read_into(m, "cpuacct.usage_sys", text, present);
            if (present) fill(s.cpu_system, nanos(d::parse_decimal(d::cgroup_trim(text))));
            if (!s.cpu_user || !s.cpu_system) {
                // Older kernels: cpuacct.stat, in USER_HZ ticks.
                read_into(m, "cpuacct.stat", text, present);
                const auto hz = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
                const auto ticks = [&](std::string_view key) -> std::optional<std::chrono::nanoseconds> {
                    const auto v = d::keyed_value(text, key);
                    if (!v || hz == 0) return std::nullopt;
                    return std::chrono::nanoseconds(*v * (1'000'000'000 / hz));
                };
                if (present) {
                    fill(s.cpu_user, ticks("user"));
                    fill(s.cpu_system, ticks("system"));
                }
            }
        }
        if (m.has("cpu") && !run_figures_only) {
            read_into(m, "cpu.stat", text, present);
            if (present) {
                fill(s.cpu_periods, d::keyed_value(text, "nr_periods"));
                fill(s.cpu_throttled_periods, d::keyed_value(text, "nr_throttled"));
                fill(s.cpu_throttled_time, nanos(d::keyed_value(text, "throttled_time")));
            }
        }
        if (m.has("pids") && !run_figures_only) read_pids(m, s);
    }

    template <class = void>
    static void read_pids(const detail::cgroup_member& m, stats& s) {
        namespace d = detail;
        std::string text;
        bool present = false;
        read_into(m, "pids.current", text, present);
        if (present) fill(s.pids_current, d::parse_decimal(d::cgroup_trim(text)));
        read_into(m, "pids.peak", text, present);
        if (present) fill(s.pids_peak, d::parse_decimal(d::cgroup_trim(text)));
        read_into(m, "pids.events", text, present);
        if (present) fill(s.pids_max_events, d::keyed_value(text, "max"));
    }

    std::string name_;
    std::vector<detail::cgroup_member> members_;  // the v2 directory first, then v1 ones
    cgroup_layout layout_ = cgroup_layout::none;
    std::string layout_text_;
    std::optional<std::uint64_t> memory_max_;
    std::chrono::milliseconds remove_timeout_{5000};
    bool owned_ = true;  // the destructor removes the group
};
using group = basic_group<void>;

// Finds groups named "<prefix>-..." below this process's cgroup, in every
// hierarchy, whose creator is gone (no such process, a zombie, or its pid
// now belongs to a later process), kills what is in them and removes them.
// Returns how many groups it removed. Groups of live creators are never
// touched. Creator pids are those of the pid namespace the group was made
// in: call this from the same one. Throws the first failure after trying
// every group.
template <class>
inline std::size_t reap_stale(std::string_view prefix) {
    namespace d = detail;
    d::check_group_prefix(prefix);
    const d::cgroup_layout_info layout = d::detect_cgroup_layout();
    // name -> its directories in each hierarchy
    std::vector<std::pair<std::string, std::vector<d::cgroup_member>>> stale;
    for (const auto& h : layout.hierarchies) {
        if (!h.usable()) continue;
        const long dirfd = d::open_directory(AT_FDCWD, h.place_dir.c_str());
        if (dirfd < 0) continue;
        unique_fd dir(static_cast<int>(dirfd));
        std::vector<std::string> names;
        if (const long r = d::subdirectories(dir.get(), names); r < 0)
            throw error(step::remove_cgroup, static_cast<int>(-r), h.place_dir, "listing it");
        for (const auto& name : names) {
            const auto parsed = d::parse_group_name(name);
            if (!parsed || parsed->prefix != prefix || !d::creator_is_gone(*parsed)) continue;
            const long fd = d::open_directory(dir.get(), name.c_str());
            if (fd < 0) continue;
            auto at = std::find_if(stale.begin(), stale.end(), [&](const auto& s) { return s.first == name; });
            if (at == stale.end()) at = stale.emplace(stale.end(), name, std::vector<d::cgroup_member>());
            at->second.push_back(d::found_member(h, d::join_cgroup_path(h.place_path, name),
                                                 h.place_dir + "/" + name, unique_fd(static_cast<int>(fd))));
        }
    }
    std::size_t removed = 0;
    std::optional<error> first;
    for (auto& [name, members] : stale) {
        group g(group::adopt_tag{}, name, std::move(members), layout.kind, layout.describe(), std::chrono::seconds(5));
        try {
            g.remove();
            ++removed;
        } catch (const error& e) {
            if (!first) first = e;
        }
    }
    if (first) throw *first;
    return removed;
}

// A size as limits take it ("64M", "1.5G", "max" as UINT64_MAX), for
// callers that want to check one early. Throws like the limits do.
template <class = void>
inline std::uint64_t parse_size(std::string_view text) { return detail::parse_size(text, "size"); }

}  // namespace ctr::cgroup
