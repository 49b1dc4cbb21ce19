"""Generate handout/ from solution/.

Every block between a line ``# BEGIN SOLUTION`` and a line ``# END SOLUTION``
becomes the student prompt

    # >>> YOUR CODE HERE >>>
    raise NotImplementedError("<Class.method>: ...")
    # <<< END OF YOUR CODE <<<

at the block's indentation.  Everything else is copied unchanged.

First it stamps the facts whose one home is elsewhere into every copy a student or TA
reads (PLACES): the accuracy thresholds of autograder/config.toml [thresholds] into
solution/*.py (the THRESHOLD constant and the module docstring, hence handout/ too), the
student README and README.md, and the tests' points (their weight markers, counted by
grader/points.py) into the READMEs.

    python tools/make_handout.py            stamp the facts, write handout/
    python tools/make_handout.py --check    exit 1 if a copy or handout/ is out of date

Another assignment (a folder with its own assignment.toml, see autograder/grader/assignment.py):
``--assignment DIR`` writes DIR/handout/ from DIR/solution/ for the files of DIR's table.  The facts
and the places they are stamped into are this course's, so nothing is stamped then.
"""
import argparse
import ast
import difflib
import os
import re
import sys

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
YOUR_CODE = "# >>> YOUR CODE HERE >>>"
END_YOUR_CODE = "# <<< END OF YOUR CODE <<<"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import config as config_mod, points as points_mod  # noqa: E402
from grader.assignment import HANDOUT_FILES, STEMS, read_table  # noqa: E402

NUMBER = r"[0-9]+(?:\.[0-9]+)?"
THRESHOLD_LIST = r",\s+".join(rf"{s} (?P<threshold_{s}>{NUMBER})" for s in STEMS)
# Every copy of a fact a student or TA reads: (file, pattern).  Each named group of a pattern is
# replaced by the fact of that name (facts() below; a suffix "__x" lets one fact appear twice in a
# pattern); "{stem}" in a place stands for each graded file in turn.  A place that matches nothing
# stops `make handout`: reword it back, or change it here.
PLACES = (
    ("solution/{stem}.py", rf"^THRESHOLD = (?P<threshold_{{stem}}>{NUMBER})$"),
    ("solution/{stem}.py", rf"threshold \((?P<threshold_{{stem}}>{NUMBER})\)"),
    ("tools/student_README.md", rf"accuracy thresholds: {THRESHOLD_LIST}"),
    ("tools/student_README.md", rf"(?P<public_tests>[0-9]+) passed — (?P<public_points>{NUMBER})/"
                                rf"(?P<public_points__2>{NUMBER}) points"),
    ("README.md", rf"accuracy thresholds: {THRESHOLD_LIST}"),
    ("README.md", rf"(?P<total_points>{NUMBER}) points in all"),
)


def facts(root=ROOT):
    """{fact name: its text} from the facts' homes: config.toml and the tests' weight markers."""
    config = config_mod.load(os.path.join(root, "autograder", "config.toml"))
    out = {f"threshold_{stem}": f"{value:.2f}" if round(value, 2) == value else repr(value)
           for stem, value in config["thresholds"].items()}
    points = points_mod.totals(points_mod.collect())["all"]
    out.update(public_tests=str(points["public_tests"]), public_points=f"{points['public']:g}",
               total_points=f"{points['public'] + points['private']:g}")
    return out


def places():
    """[(file relative to the root, compiled pattern)], "{stem}" expanded."""
    out = []
    for path, pattern in PLACES:
        for stem in STEMS if "{stem}" in path else [None]:
            out.append((path.replace("{stem}", stem or ""), re.compile(pattern.replace("{stem}", stem or ""),
                                                                       re.M)))
    return out


def stamp(text, pattern, facts, path):
    """``text`` with every match of ``pattern`` carrying the facts; StampError when nothing matches."""
    pieces, cursor, found = [], 0, 0
    for match in pattern.finditer(text):
        found += 1
        spans = sorted((match.span(name), facts[name.split("__")[0]]) for name in pattern.groupindex)
        for (start, end), value in spans:
            pieces += [text[cursor:start], value]
            cursor = end
    if not found:
        raise StampError(f"{path}: no place matches {pattern.pattern!r}; write the fact back in that form "
                         f"or change PLACES in tools/make_handout.py")
    return "".join(pieces) + text[cursor:]


def stamped(root=ROOT):
    """{file relative to the root: (current text, stamped text)} of every file with a place."""
    known, out = facts(root), {}
    for path, pattern in places():
        if path not in out:
            with open(os.path.join(root, path), encoding="utf-8") as fh:
                text = fh.read()
            out[path] = (text, text)
        out[path] = (out[path][0], stamp(out[path][1], pattern, known, path))
    return out


class MarkerError(ValueError):
    pass


class StampError(ValueError):
    pass


def _function_names(source, path):
    """Map each line number to the qualified name of the innermost function around it."""
    names = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, child.end_lineno + 1):
                        names[line] = qual
                visit(child, qual + ".")
            else:
                visit(child, prefix)

    try:
        visit(ast.parse(source, filename=path), "")
    except SyntaxError as exc:
        raise MarkerError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    return names


def solution_blocks(source, path):
    """List of (begin_line, end_line, indent) for each block, 1-based, markers included."""
    blocks, open_at = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_at is not None:
                raise MarkerError(f"{path}:{number}: '{BEGIN}' inside the block opened at line {open_at[0]} "
                                  "(blocks cannot nest)")
            open_at = (number, line[:len(line) - len(line.lstrip())])
        elif stripped == END:
            if open_at is None:
                raise MarkerError(f"{path}:{number}: '{END}' without a matching '{BEGIN}'")
            blocks.append((open_at[0], number, open_at[1]))
            open_at = None
        elif BEGIN in line or END in line:
            raise MarkerError(f"{path}:{number}: a solution marker must stand alone on its line")
    if open_at is not None:
        raise MarkerError(f"{path}:{open_at[0]}: '{BEGIN}' is never closed with '{END}'")
    return blocks


def make_handout_source(source, path):
    names = _function_names(source, path)
    lines = source.splitlines(keepends=True)
    out, cursor = [], 0
    for begin, end, indent in solution_blocks(source, path):
        out.extend(lines[cursor:begin - 1])
        name = names.get(begin)
        if name is None:
            raise MarkerError(f"{path}:{begin}: a solution block must sit inside a function")
        out.append(f"{indent}{YOUR_CODE}\n")
        out.append(f'{indent}raise NotImplementedError("{name}: replace this line with your code")\n')
        out.append(f"{indent}{END_YOUR_CODE}\n")
        cursor = end
    out.extend(lines[cursor:])
    return "".join(out)


def generate(solution_dir, names=HANDOUT_FILES):
    """{file name: handout text} for every handout file (``names``: the course's by default)."""
    result = {}
    for name in names:
        path = os.path.join(solution_dir, name)
        with open(path, encoding="utf-8") as fh:
            result[name] = make_handout_source(fh.read(), os.path.relpath(path, ROOT))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--assignment", metavar="DIR", help="another assignment's folder: DIR/handout/ from "
                        "DIR/solution/ for the files of DIR/assignment.toml, nothing stamped")
    parser.add_argument("--solution", help="default: solution/ (DIR/solution/ with --assignment)")
    parser.add_argument("--handout", help="default: handout/ (DIR/handout/ with --assignment)")
    args = parser.parse_args(argv)
    top = args.assignment or ROOT
    args.solution = args.solution or os.path.join(top, "solution")
    args.handout = args.handout or os.path.join(top, "handout")
    try:
        names = HANDOUT_FILES
        if args.assignment:
            files, helper = read_table(args.assignment)
            names, copies = (*((helper,) if helper else ()), *(f.code for f in files)), {}
        else:
            copies = stamped()
        if not args.check:
            write({os.path.join(ROOT, path): new for path, (old, new) in copies.items() if new != old})
        generated = generate(args.solution, names)
    except (MarkerError, StampError, config_mod.ConfigError, RuntimeError, OSError, ValueError) as exc:
        print(f"make_handout: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [path for path, (old, new) in copies.items() if new != old]
        for path in stale:
            old, new = copies[path]
            sys.stderr.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), path,
                                                       f"stamped/{path}", n=0))
        if stale:
            print(f"make_handout: {', '.join(stale)} disagree with autograder/config.toml or the tests' "
                  "weight markers; run `make handout`.", file=sys.stderr)
            return 1
        for name, text in generated.items():
            path = os.path.join(args.handout, name)
            current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
            if current != text:
                stale.append(name)
                sys.stderr.writelines(difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), f"handout/{name}", f"generated/{name}", n=1))
        if stale:
            again = (f"python tools/make_handout.py --assignment {args.assignment}" if args.assignment
                     else "make handout")
            print(f"make_handout: handout/ is out of date ({', '.join(stale)}); run `{again}`.", file=sys.stderr)
            return 1
        print("handout/ is up to date.")
        return 0
    os.makedirs(args.handout, exist_ok=True)
    write({os.path.join(args.handout, name): text for name, text in generated.items()})
    changed = sorted(path for path, (old, new) in copies.items() if new != old)
    nothing = "nothing (the facts are the course's)" if args.assignment else "nothing (every copy agrees)"
    print(f"stamped {', '.join(changed) if changed else nothing}; wrote {len(generated)} files to "
          f"{os.path.relpath(args.handout, ROOT)}/")
    return 0


def write(texts):
    """Write each {path: text} through a temporary file beside it."""
    for path, text in texts.items():
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
