#pragma once
// Where the cgroup hierarchies are mounted and where this process's own
// cgroup is on each of them, from /proc/self/mountinfo and /proc/self/cgroup.
//
// The parsers take the files' text, so that layouts this host does not have
// (pure v2, pure v1, cgroup namespaces, odd mount roots) are tested too.

#include <ctr/detail/file.hpp>
#include <ctr/error.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctr {

// none: no cgroup filesystem is mounted; v1: only v1 hierarchies carry
// controllers; v2: only the unified (cgroup2) hierarchy is mounted; hybrid:
// v1 controller hierarchies plus a cgroup2 mount (often with no controllers).
enum class cgroup_layout : std::uint8_t { none, v1, v2, hybrid };

template <class = void>
inline std::string_view to_string(cgroup_layout layout) noexcept {
    switch (layout) {
        case cgroup_layout::none: return "none";
        case cgroup_layout::v1: return "v1";
        case cgroup_layout::v2: return "v2";
        case cgroup_layout::hybrid: return "hybrid";
    }
    return "unknown";
}

namespace detail {

// The cgroup a process moved itself into with cgroup::move_self_to_leaf().
// A process whose v2 cgroup has this name places its groups beside it, in
// the parent, whose subtree_control the leaf made usable.
inline constexpr std::string_view cgroup_leaf_name = "ctr-leaf";

// mountinfo escapes space, tab, newline and backslash as \ooo.
template <class = void>
inline std::string unescape_mountinfo(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' && text[i + 2] >= '0'
            && text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
            out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
            i += 3;
        } else {
            out += text[i];
        }
    }
    return out;
}

template <class = void>
inline std::vector<std::string_view> cgroup_split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) break;
        text.remove_prefix(at + 1);
    }
    return parts;
}

// Fields separated by runs of spaces.
template <class = void>
inline std::vector<std::string_view> cgroup_words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
        if (i > start) out.push_back(text.substr(start, i - start));
    }
    return out;
}

// Super options of a v1 cgroup mount that are not controller names.
template <class = void>
inline bool is_cgroup_mount_option(std::string_view option) {
    static constexpr std::string_view options[] = {
        "rw", "ro", "relatime", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods", "noprefix"};
    if (option.empty() || option.find('=') != std::string_view::npos || option.rfind("no", 0) == 0) return true;
    return std::find(std::begin(options), std::end(options), option) != std::end(options);
}

struct cgroup_mount {
    bool v2 = false;
    std::string mount_point;
    std::string root;                      // the part of the hierarchy that is mounted there
    std::vector<std::string> controllers;  // v1 only, in mount-option order
    std::string name;                      // v1 name=... (named hierarchies like name=systemd)
};

// Every cgroup and cgroup2 mount, in mountinfo order.
template <class = void>
inline std::vector<cgroup_mount> parse_cgroup_mounts(std::string_view mountinfo) {
    std::vector<cgroup_mount> mounts;
    for (std::string_view line : cgroup_split(mountinfo, '\n')) {
        // "id parent major:minor root mount-point options [optional...] - fstype source super-options"
        const auto dash = line.find(" - ");
        if (dash == std::string_view::npos) continue;
        const auto before = cgroup_words(line.substr(0, dash));
        const auto after = cgroup_words(line.substr(dash + 3));
        if (before.size() < 5 || after.size() < 3) continue;
        cgroup_mount m;
        if (after[0] == "cgroup2")
            m.v2 = true;
        else if (after[0] != "cgroup")
            continue;
        m.root = unescape_mountinfo(before[3]);
        m.mount_point = unescape_mountinfo(before[4]);
        if (!m.v2)
            for (std::string_view option : cgroup_split(after[2], ',')) {
                if (option.rfind("name=", 0) == 0)
                    m.name = std::string(option.substr(5));
                else if (!is_cgroup_mount_option(option))
                    m.controllers.emplace_back(option);
            }
        mounts.push_back(std::move(m));
    }
    return mounts;
}

// One line of /proc/<pid>/cgroup: "id:controllers:path"; id 0 with no
// controllers is the v2 hierarchy.
struct proc_cgroup_entry {
    int id = 0;
    std::vector<std::string> controllers;
    std::string name;  // name=... of a named v1 hierarchy
    std::string path;
};

template <class = void>
inline std::vector<proc_cgroup_entry> parse_proc_cgroup(std::string_view text) {
    std::vector<proc_cgroup_entry> entries;
    for (std::string_view line : cgroup_split(text, '\n')) {
        const auto first = line.find(':');
        if (first == std::string_view::npos) continue;
        const auto second = line.find(':', first + 1);
        if (second == std::string_view::npos) continue;
        proc_cgroup_entry e;
        // The hierarchy id: a decimal the kernel writes; a line with anything
        // else, or more digits than an int holds, is not the kernel's.
        const auto id_text = line.substr(0, first);
        if (id_text.empty() || id_text.size() > 9) continue;
        e.id = 0;
        for (char c : id_text) {
            if (c < '0' || c > '9') {
                e.id = -1;
                break;
            }
            e.id = e.id * 10 + (c - '0');
        }
        if (e.id < 0) continue;
        const auto list = line.substr(first + 1, second - first - 1);
        if (!list.empty())
            for (std::string_view c : cgroup_split(list, ',')) {
                if (c.rfind("name=", 0) == 0)
                    e.name = std::string(c.substr(5));
                else if (!c.empty())
                    e.controllers.emplace_back(c);
            }
        e.path = std::string(line.substr(second + 1));
        entries.push_back(std::move(e));
    }
    return entries;
}

// The parent of a cgroup path ("/a/b" -> "/a", "/a" -> "/").
template <class = void>
inline std::string parent_cgroup_path(std::string_view path) {
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

template <class = void>
inline std::string join_cgroup_path(std::string_view parent, std::string_view name) {
    std::string out(parent);
    if (out.empty() || out.back() != '/') out += '/';
    out += name;
    return out;
}

// One hierarchy ctr can make groups in: the v2 one, or a v1 one that carries
// controllers. Named v1 hierarchies (name=systemd) belong to their owner and
// are never used.
struct cgroup_hierarchy {
    bool v2 = false;
    int id = 0;                            // as in /proc/self/cgroup
    std::vector<std::string> controllers;  // v1: mounted there; v2: what the placement cgroup may enable
    std::string mount_point;
    std::string mount_root = "/";  // the part of the hierarchy mounted at mount_point
    std::string own_path;    // this process's cgroup, as /proc/self/cgroup shows it
    std::string place_path;  // where groups go: own_path, or its parent when own_path is a ctr-leaf
    std::string place_dir;   // place_path in the file system
    std::string problem;     // non-empty when the hierarchy cannot be used, saying why

    template <class = void>
    bool has(std::string_view controller) const {
        return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
    }
    template <class = void>
    bool usable() const { return problem.empty(); }
};

struct cgroup_layout_info {
    cgroup_layout kind = cgroup_layout::none;
    std::vector<cgroup_hierarchy> hierarchies;  // the v2 hierarchy first, then v1 ones in mount order

    template <class = void>
    const cgroup_hierarchy* v2() const {
        for (const auto& h : hierarchies)
            if (h.v2) return &h;
        return nullptr;
    }

    // For messages: "hybrid layout: v1 controllers cpu cpuacct ...; v2 at
    // /sys/fs/cgroup/unified with controllers hugetlb".
    template <class = void>
    std::string describe() const {
        std::string text = std::string(to_string(kind)) + " layout";
        std::string v1;
        for (const auto& h : hierarchies)
            if (!h.v2)
                for (const auto& c : h.controllers) v1 += " " + c;
        if (!v1.empty()) text += ": v1 controllers" + v1;
        if (const auto* h = v2()) {
            text += v1.empty() ? ": " : "; ";
            text += "v2 at " + h->mount_point + " with controllers";
            if (h->controllers.empty()) text += " (none)";
            for (const auto& c : h->controllers) text += " " + c;
            if (!h->usable()) text += " (unusable: " + h->problem + ")";
        }
        return text;
    }
};

// Maps a cgroup path to its directory under one of the hierarchy's mounts:
// the first mount whose root contains the path. Empty if none does (the
// process's cgroup is outside what is mounted, e.g. in another namespace).
template <class = void>
inline std::string cgroup_dir(const std::vector<const cgroup_mount*>& mounts, std::string_view path) {
    for (const cgroup_mount* m : mounts) {
        std::string_view root = m->root;
        if (root == "/") return path == "/" ? m->mount_point : m->mount_point + std::string(path);
        if (path == root) return m->mount_point;
        if (path.size() > root.size() && path.substr(0, root.size()) == root && path[root.size()] == '/')
            return m->mount_point + std::string(path.substr(root.size()));
    }
    return {};
}

// The layout from the two files' text. v2 controllers are left empty: they
// are read from the placement cgroup's cgroup.controllers by
// detect_cgroup_layout().
template <class = void>
inline cgroup_layout_info parse_cgroup_layout(std::string_view mountinfo, std::string_view proc_self_cgroup) {
    const auto mounts = parse_cgroup_mounts(mountinfo);
    const auto entries = parse_proc_cgroup(proc_self_cgroup);
    cgroup_layout_info info;

    std::vector<const cgroup_mount*> v2_mounts;
    for (const auto& m : mounts)
        if (m.v2) v2_mounts.push_back(&m);
    if (!v2_mounts.empty()) {
        cgroup_hierarchy h;
        h.v2 = true;
        h.mount_point = v2_mounts.front()->mount_point;
        h.mount_root = v2_mounts.front()->root;
        const proc_cgroup_entry* own = nullptr;
        for (const auto& e : entries)
            if (e.id == 0 && e.controllers.empty() && e.name.empty()) own = &e;
        if (!own) {
            h.problem = "/proc/self/cgroup has no v2 (0::) line";
        } else {
            h.own_path = own->path;
            const auto slash = own->path.rfind('/');
            const bool in_leaf = slash != std::string::npos && own->path.substr(slash + 1) == cgroup_leaf_name;
            h.place_path = in_leaf ? parent_cgroup_path(own->path) : own->path;
            if (h.place_path.rfind("/..", 0) == 0 || h.place_path.find("/../") != std::string::npos)
                h.problem = "this process's cgroup " + h.place_path + " is outside its cgroup namespace";
            else if ((h.place_dir = cgroup_dir(v2_mounts, h.place_path)).empty())
                h.problem = "this process's cgroup " + h.place_path + " is not below any cgroup2 mount's root";
            // The mount that holds the placement dir is the one reported.
            for (const cgroup_mount* m : v2_mounts)
                if (h.place_dir.rfind(m->mount_point, 0) == 0) {
                    h.mount_point = m->mount_point;
                    h.mount_root = m->root;
                    break;
                }
        }
        info.hierarchies.push_back(std::move(h));
    }

    // v1: one hierarchy per distinct controller set, in mount order.
    bool any_v1 = false;
    for (const auto& m : mounts) {
        if (m.v2 || m.controllers.empty()) continue;
        bool seen = false;
        for (const auto& h : info.hierarchies)
            if (!h.v2 && h.controllers == m.controllers) seen = true;
        if (seen) continue;
        any_v1 = true;
        cgroup_hierarchy h;
        h.controllers = m.controllers;
        h.mount_point = m.mount_point;
        h.mount_root = m.root;
        std::vector<const cgroup_mount*> same;
        for (const auto& other : mounts)
            if (!other.v2 && other.controllers == m.controllers) same.push_back(&other);
        const proc_cgroup_entry* own = nullptr;
        for (const auto& e : entries) {
            auto a = e.controllers, b = m.controllers;
            std::sort(a.begin(), a.end());
            std::sort(b.begin(), b.end());
            if (e.id > 0 && a == b) own = &e;
        }
        if (!own) {
            h.problem = "/proc/self/cgroup has no line for this hierarchy";
        } else {
            h.id = own->id;
            h.own_path = own->path;
            h.place_path = own->path;
            if (h.place_path.rfind("/..", 0) == 0 || h.place_path.find("/../") != std::string::npos)
                h.problem = "this process's cgroup " + h.place_path + " is outside its cgroup namespace";
            else if ((h.place_dir = cgroup_dir(same, h.place_path)).empty())
                h.problem = "this process's cgroup " + h.place_path + " is not below the mount's root";
        }
        info.hierarchies.push_back(std::move(h));
    }

    const bool any_v2 = !v2_mounts.empty();
    info.kind = any_v1 && any_v2 ? cgroup_layout::hybrid
                : any_v1         ? cgroup_layout::v1
                : any_v2         ? cgroup_layout::v2
                                 : cgroup_layout::none;
    return info;
}

// The components of a group path given by the caller (options::path,
// group::open): "a/b" or "/a/b". Empty components ("a//b"), "." and "..",
// a trailing slash and the root itself are refused: a path names one
// cgroup, and never climbs out of where it starts. Throws
// ctr::error(create_cgroup, EINVAL) naming the path.
template <class = void>
inline std::vector<std::string> group_path_components(std::string_view path) {
    const auto fail = [&](std::string_view why) {
        throw error(step::create_cgroup, EINVAL, std::string(path), "bad cgroup path: " + std::string(why));
    };
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (rest.empty()) fail("it names no group (give \"NAME\", \"PARENT/NAME\" or \"/PARENT/NAME\")");
    std::vector<std::string> out;
    for (std::string_view part : cgroup_split(rest, '/')) {
        if (part.empty()) fail("an empty component (a doubled or trailing '/')");
        if (part == "." || part == "..") fail("'.' and '..' are not allowed");
        if (part.size() > 255) fail("a component longer than 255 bytes");
        if (part.find('\0') != std::string_view::npos || part.find('\n') != std::string_view::npos)
            fail("a NUL or newline in it");
        out.emplace_back(part);
    }
    return out;
}

// Where a group at a caller's path lives in one hierarchy. An absolute path
// ("/a/b") starts at the root of the hierarchy as mounted here (as runc and
// crun read an OCI cgroupsPath); a relative one ("a/b") below this
// process's own cgroup (place_dir), like generated names.
struct group_location {
    std::string base_dir;                 // the directory the path starts from
    std::string base_path;                // base_dir as /proc/<pid>/cgroup shows it
    std::vector<std::string> components;  // below base_dir, the last is the group
    std::string dir;                      // the group's directory
    std::string cgroup_path;              // the group as /proc/<pid>/cgroup shows it
};

template <class = void>
inline group_location locate_group(const cgroup_hierarchy& h, std::string_view path) {
    group_location at;
    at.components = group_path_components(path);
    const bool absolute = path.front() == '/';
    at.base_dir = absolute ? h.mount_point : h.place_dir;
    at.base_path = absolute ? h.mount_root : h.place_path;
    at.dir = at.base_dir;
    at.cgroup_path = at.base_path;
    for (const auto& c : at.components) {
        at.dir += "/" + c;
        at.cgroup_path = join_cgroup_path(at.cgroup_path, c);
    }
    return at;
}

// Controllers listed in a cgroup.controllers or cgroup.subtree_control file.
template <class = void>
inline std::vector<std::string> controller_list(std::string_view text) {
    std::vector<std::string> out;
    for (std::string_view w : cgroup_words(text.substr(0, text.find('\n')))) out.emplace_back(w);
    return out;
}

// This process's layout; throws ctr::error(step::cgroup_layout) if the two
// files cannot be read.
template <class = void>
inline cgroup_layout_info detect_cgroup_layout() {
    const auto mountinfo = read_small_file("/proc/self/mountinfo");
    if (!mountinfo) throw error(step::cgroup_layout, EIO, "/proc/self/mountinfo", "cannot read it");
    const auto own = read_small_file("/proc/self/cgroup");
    if (!own) throw error(step::cgroup_layout, EIO, "/proc/self/cgroup", "cannot read it");
    cgroup_layout_info info = parse_cgroup_layout(*mountinfo, *own);
    for (auto& h : info.hierarchies)
        if (h.v2 && h.usable()) {
            if (auto list = read_first_line(h.place_dir + "/cgroup.controllers"))
                h.controllers = controller_list(*list);
            else
                h.problem = "cannot read " + h.place_dir + "/cgroup.controllers";
        }
    return info;
}

}  // namespace detail
}  // namespace ctr
