#!/usr/bin/env python3
"""Generate the single header single_include/ctr/ctr.hpp from include/.

Starting at include/ctr/ctr.hpp, every `#include <ctr/...>` is replaced by
that header's text the first time it is met and dropped after that. The
`#pragma once` lines of the inlined headers go; the result has one at the top.
Every other include stays as written. The output depends only on the headers.

    python3 tools/amalgamate.py              write single_include/ctr/ctr.hpp
    python3 tools/amalgamate.py --check      exit 1 if that file is out of date
    python3 tools/amalgamate.py --output F   write F instead (or check F)

Only the standard library is used, so any Python 3.7 or later will do.
"""

import argparse
import difflib
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INCLUDE_DIR = ROOT / "include"
ENTRY = "ctr/ctr.hpp"
DEFAULT_OUTPUT = ROOT / "single_include" / "ctr" / "ctr.hpp"
COMMAND = "python3 tools/amalgamate.py"
DIFF_LINES = 40

CTR_INCLUDE = re.compile(r"^\s*#\s*include\s*<(ctr/[^>]+)>")
QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"')
PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\b")
CONDITIONAL_BEGIN = re.compile(r"^\s*#\s*if")  # #if, #ifdef, #ifndef
CONDITIONAL_END = re.compile(r"^\s*#\s*endif\b")

HEADER = (
    "// Generated from include/{entry} by `{command}`; do not edit.\n"
    "// Change the headers under include/ and run that command again.\n"
    "#pragma once\n"
)


class AmalgamateError(Exception):
    pass


def amalgamate(include_dir, entry):
    """Return the single header's text and the set of headers it took in."""
    seen = set()
    out = [HEADER.format(entry=entry, command=COMMAND)]

    def inline(name, where):
        path = include_dir / name
        if not path.is_file():
            raise AmalgamateError("{}: <{}> is not a file under {}".format(where, name, include_dir))
        seen.add(name)
        # Inlining happens once, so a header pulled in under #if would be
        # missing wherever that condition is false; refuse rather than guess.
        depth = 0
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, start=1):
            here = "include/{}:{}".format(name, number)
            if CONDITIONAL_BEGIN.match(line):
                depth += 1
            elif CONDITIONAL_END.match(line):
                depth -= 1
            match = CTR_INCLUDE.match(line)
            if match:
                child = posixpath.normpath(match.group(1))
                if child in seen:
                    continue
                if depth > 0:
                    raise AmalgamateError(
                        "{}: <{}> is included inside #if; include it unconditionally".format(here, child))
                out.append("// begin {}\n".format(child))
                inline(child, here)
                out.append("// end {}\n".format(child))
            elif QUOTED_INCLUDE.match(line):
                raise AmalgamateError(
                    '{}: #include "..." is not followed; include ctr headers as <ctr/...>'.format(here))
            elif not PRAGMA_ONCE.match(line):
                out.append(line + "\n")

    inline(entry, "entry point")
    return "".join(out), seen


def unreachable_headers(include_dir, seen):
    found = sorted(p.relative_to(include_dir).as_posix() for p in (include_dir / "ctr").rglob("*.hpp"))
    return [name for name in found if name not in seen]


def display(path):
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def read_exact(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def check(output, generated):
    try:
        committed = read_exact(output)
    except FileNotFoundError:
        print("{} does not exist; run `{}` and commit it.".format(display(output), COMMAND), file=sys.stderr)
        return 1
    if committed == generated:
        print("{} is up to date.".format(display(output)))
        return 0
    diff = list(difflib.unified_diff(
        committed.splitlines(keepends=True), generated.splitlines(keepends=True),
        fromfile="{} (committed)".format(display(output)),
        tofile="{} (generated from include/)".format(display(output))))
    print("{} is out of date with include/; run `{}` and commit the result.".format(display(output), COMMAND),
          file=sys.stderr)
    sys.stderr.writelines(line if line.endswith("\n") else line + "\n" for line in diff[:DIFF_LINES])
    if len(diff) > DIFF_LINES:
        print("... {} more lines of diff".format(len(diff) - DIFF_LINES), file=sys.stderr)
    return 1


def write(output, generated):
    if output.is_file() and read_exact(output) == generated:
        # Leave the file and its time stamp alone, so nothing rebuilds.
        print("{} is up to date.".format(display(output)))
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8", newline="\n") as f:
        f.write(generated)
    print("wrote {}".format(display(output)))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 and show a diff if the output file is out of date")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE",
                        help="the file to write or check (default: single_include/ctr/ctr.hpp)")
    args = parser.parse_args()

    try:
        generated, seen = amalgamate(INCLUDE_DIR, ENTRY)
    except AmalgamateError as e:
        print("amalgamate: {}".format(e), file=sys.stderr)
        return 2
    for name in unreachable_headers(INCLUDE_DIR, seen):
        print("amalgamate: note: include/{} is not reachable from include/{} and is not in the single header"
              .format(name, ENTRY), file=sys.stderr)

    return check(args.output, generated) if args.check else write(args.output, generated)


if __name__ == "__main__":
    sys.exit(main())
