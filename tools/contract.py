"""The contract table (autograder/contract.toml): load it, check it, print it.

    python tools/contract.py            # the table as markdown, for autograder/README.md
    python tools/contract.py --check    # exit 1 and name every problem

A promise is one sentence of a stub's docstring that a student's code could break.  Each
names the tests that check it and the seeded bug (tests/mutants/mutants.toml) that breaks it.
"""
import argparse
import ast
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "autograder", "contract.toml")
TESTS = os.path.join(ROOT, "autograder", "tests")
MUTANTS = os.path.join(ROOT, "tests", "mutants", "mutants.toml")
KEYS = {"id": str, "function": str, "says": str, "tests": list, "mutant": str, "also": list}
REQUIRED = ("id", "function", "says", "tests", "mutant")
MARKER = "# BEGIN SOLUTION"


def load(path=TABLE):
    with open(path, "rb") as fh:
        return tomllib.load(fh).get("promise", [])


def words(text):
    return " ".join((text or "").split())


def functions_of(path):
    """{qualified name: (docstring, class docstring or None, source)} of a Python file's functions
    and methods, and the module docstring under the key None."""
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    tree = ast.parse(source)
    found = {None: (ast.get_docstring(tree), None, "")}
    for node in tree.body:
        members = [(node, None)] if isinstance(node, ast.FunctionDef) else []
        if isinstance(node, ast.ClassDef):
            members = [(m, node) for m in node.body if isinstance(m, ast.FunctionDef)]
        for fn, cls in members:
            name = f"{cls.name}.{fn.name}" if cls else fn.name
            found[name] = (ast.get_docstring(fn), ast.get_docstring(cls) if cls else None,
                           ast.get_source_segment(source, fn) or "")
    return found


def student_functions(folder):
    """"<file>.<qualname>" of every function with a student block in ``folder``'s four files."""
    names = set()
    for filename in sorted(os.listdir(folder)):
        if filename.endswith(".py") and filename != "utils.py":
            for qualname, (_, _, source) in functions_of(os.path.join(folder, filename)).items():
                if qualname and MARKER in source:
                    names.add(f"{filename[:-3]}.{qualname}")
    return names


def test_functions():
    """{"<public|hidden>/<file>::<function>": first docstring line} of every grader test."""
    found = {}
    for kind in ("public", "hidden"):
        folder = os.path.join(TESTS, kind)
        for filename in sorted(os.listdir(folder)):
            if filename.startswith("test_") and filename.endswith(".py"):
                for qualname, (doc, _, _) in functions_of(os.path.join(folder, filename)).items():
                    if qualname and qualname.startswith("test_"):
                        found[f"{kind}/{filename}::{qualname}"] = (doc or qualname).strip().splitlines()[0]
    return found


def mutants():
    with open(MUTANTS, "rb") as fh:
        return {m["name"]: m for m in tomllib.load(fh).get("mutant", [])}


def problems(promises, solution=os.path.join(ROOT, "solution"), handout=os.path.join(ROOT, "handout")):
    """Every way the table, the stubs, the tests and the mutants disagree, as sentences."""
    out = []
    tests, seeded = test_functions(), mutants()
    written = student_functions(solution)
    stubs = {f[:-3]: functions_of(os.path.join(handout, f)) for f in os.listdir(handout)
             if f.endswith(".py") and f != "utils.py"}
    ids, used = set(), {}
    for i, p in enumerate(promises):
        where = f"promise {p.get('id', f'#{i + 1}')}"
        for key in REQUIRED:
            if key not in p:
                out.append(f"{where}: missing {key}")
        for key, value in p.items():
            if key not in KEYS:
                out.append(f"{where}: unknown key {key!r} (known: {', '.join(KEYS)})")
            elif not isinstance(value, KEYS[key]):
                out.append(f"{where}: {key} must be a {KEYS[key].__name__}")
        if any(k not in p or not isinstance(p[k], KEYS[k]) for k in REQUIRED):
            continue
        if p["id"] in ids:
            out.append(f"{where}: the id is used twice")
        ids.add(p["id"])
        stem, _, qualname = p["function"].partition(".")
        if p["function"] not in written:
            out.append(f"{where}: {p['function']} is not a function with a student block in solution/")
        stub = stubs.get(stem, {})
        if qualname not in stub:
            out.append(f"{where}: handout/{stem}.py has no {qualname}")
        else:
            doc, class_doc, _ = stub[qualname]
            texts = [words(doc), words(class_doc), words(stub[None][0])]
            if not any(words(p["says"]) in t for t in texts if t):
                out.append(f"{where}: {p['says']!r} is not in the docstring of {qualname} (nor of its class or "
                           f"handout/{stem}.py)")
        if not p["tests"]:
            out.append(f"{where}: no test checks it")
        for t in p["tests"] + p.get("also", []):
            if t not in tests:
                out.append(f"{where}: no test {t} in autograder/tests")
            elif f"test_{stem}" not in t:
                out.append(f"{where}: {t} is not a test of {stem}.py")
        mutant = seeded.get(p["mutant"])
        if mutant is None:
            out.append(f"{where}: no mutant {p['mutant']} in tests/mutants/mutants.toml")
        elif mutant["file"] != f"{stem}.py":
            out.append(f"{where}: mutant {p['mutant']} patches {mutant['file']}, not {stem}.py")
        if p["mutant"] in used:
            out.append(f"{where}: mutant {p['mutant']} already serves promise {used[p['mutant']]}")
        used[p["mutant"]] = p["id"]
    covered = {p.get("function") for p in promises}
    for name in sorted(written - covered):
        out.append(f"{name} has a student block but no promise in autograder/contract.toml")
    names = list(tests.values())
    for t, name in tests.items():
        if names.count(name) > 1:
            out.append(f"{t}: its first docstring line {name!r} is not unique; results.json names tests by it")
    return out


def test_of_result(result_name, tests=None):
    """The test id of a results.json test name (its docstring's first line, maybe with " [param]")."""
    tests = test_functions() if tests is None else tests
    base = re.sub(r" \[[^\]]*\]$", "", result_name)
    matches = [t for t, name in tests.items() if name == base]
    return matches[0] if len(matches) == 1 else None


def markdown(promises):
    rows = ["| promise | function | the docstring says | checked by | mutant |", "|---|---|---|---|---|"]
    for p in promises:
        checked = "<br>".join(t.split("::")[1] + (" (hidden)" if t.startswith("hidden/") else "") for t in p["tests"])
        says = p["says"].replace("|", "\\|")
        rows.append(f"| `{p['id']}` | `{p['function']}` | {says} | {checked} | `{p['mutant']}` |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check the table; exit 1 on any problem")
    args = parser.parse_args(argv)
    try:
        promises = load()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"contract: cannot read {os.path.relpath(TABLE, ROOT)}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        found = problems(promises)
        for line in found:
            print(f"contract: {line}", file=sys.stderr)
        print(f"{len(promises)} promises over {len({p.get('function') for p in promises})} functions; "
              f"{len(found)} problems")
        return 1 if found else 0
    print(markdown(promises))
    return 0


if __name__ == "__main__":
    sys.exit(main())
