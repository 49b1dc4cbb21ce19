"""Generate handout/ from solution/.

Every block between a line ``# BEGIN SOLUTION`` and a line ``# END SOLUTION``
becomes the student prompt

    # >>> YOUR CODE HERE >>>
    raise NotImplementedError("<Class.method>: ...")
    # <<< END OF YOUR CODE <<<

at the block's indentation.  Everything else is copied unchanged.

    python tools/make_handout.py            write handout/
    python tools/make_handout.py --check    exit 1 if handout/ is out of date
"""
import argparse
import ast
import difflib
import os
import sys

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
YOUR_CODE = "# >>> YOUR CODE HERE >>>"
END_YOUR_CODE = "# <<< END OF YOUR CODE <<<"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader.assignment import HANDOUT_FILES  # noqa: E402


class MarkerError(ValueError):
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


def generate(solution_dir):
    """{file name: handout text} for every handout file."""
    result = {}
    for name in HANDOUT_FILES:
        path = os.path.join(solution_dir, name)
        with open(path, encoding="utf-8") as fh:
            result[name] = make_handout_source(fh.read(), os.path.relpath(path, ROOT))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--solution", default=os.path.join(ROOT, "solution"))
    parser.add_argument("--handout", default=os.path.join(ROOT, "handout"))
    args = parser.parse_args(argv)
    try:
        generated = generate(args.solution)
    except (MarkerError, OSError) as exc:
        print(f"make_handout: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = []
        for name, text in generated.items():
            path = os.path.join(args.handout, name)
            current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
            if current != text:
                stale.append(name)
                sys.stderr.writelines(difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), f"handout/{name}", f"generated/{name}", n=1))
        if stale:
            print(f"make_handout: handout/ is out of date ({', '.join(stale)}); run `make handout`.",
                  file=sys.stderr)
            return 1
        print("handout/ is up to date.")
        return 0
    os.makedirs(args.handout, exist_ok=True)
    for name, text in generated.items():
        tmp = os.path.join(args.handout, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, os.path.join(args.handout, name))
    print(f"wrote {len(generated)} files to {os.path.relpath(args.handout, ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
