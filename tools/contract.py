"""The contract table (autograder/contract.toml): load it, check it, print it.

    python tools/contract.py            # the table as markdown, for autograder/README.md
    python tools/contract.py --check    # exit 1 and name every problem

A promise is one sentence of a stub's docstring that a student's code could break.  Each
names the tests that check it and the seeded bug (tests/mutants/mutants.toml) that breaks it.
"""
import argparse
import ast
import json
import os
import re
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "autograder", "contract.toml")
MUTANTS = os.path.join(ROOT, "tests", "mutants", "mutants.toml")
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import discovery  # noqa: E402
KEYS = {"id": str, "function": str, "says": str, "tests": list, "mutant": str, "also": list,
        "sometimes": list}
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


def test_functions(folder=None):
    """{"<public|private>/<file>::<function>": first docstring line} of every grader test
    (grader.discovery, the grader's own listing; ``folder``: another assignment's tests/)."""
    return {f"{m.kind}/{m.name}::{name}": line for m in discovery.test_modules(folder=folder)
            for name, line in m.tests.items()}


def mutants(path=MUTANTS):
    with open(path, "rb") as fh:
        return {m["name"]: m for m in tomllib.load(fh).get("mutant", [])}


def problems(promises, solution=os.path.join(ROOT, "solution"), handout=os.path.join(ROOT, "handout"), tests=None,
             seeded=None):
    """Every way the table, the stubs, the tests and the mutants disagree, as sentences.  ``tests`` and
    ``seeded`` (test_functions(), mutants() by default) are another assignment's."""
    out = []
    tests = test_functions() if tests is None else tests
    seeded = mutants() if seeded is None else seeded
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
        both = set(p.get("sometimes", [])) & set(p["tests"] + p.get("also", []))
        if both:
            out.append(f"{where}: {', '.join(sorted(both))} is in sometimes and also in its tests or also")
        for t in p["tests"] + p.get("also", []) + p.get("sometimes", []):
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


# ---------------------------------------------------------------- the measured part: also
# ``tests`` are written by hand (the promise); ``also`` is measured (tools/variants.py mutants): the other
# tests a promise's mutant fails.  update_also rewrites only the also entries whose set of tests changed.
# ``sometimes`` is written by hand, with a comment saying why: tests the mutant fails on some machines and
# passes on others (an accuracy near its threshold under the cheap budget).  Its failures are no error, its
# passes no note, and no update moves them into also or out of the table.
UPDATE = "make contract-update (tools/variants.py mutants --update)"
KEY_LINE = re.compile(r"^[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*", re.M)


def _eol(text, i):
    """The index of the end of the line ``text[i]`` is on (its newline, or the end of the text)."""
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _value_end(text, i):
    """The index just past the TOML value that starts at ``text[i]``: an array (of any nesting) or a
    string, with strings and comments inside an array skipped; a bare value ends at its line's end."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while not text.startswith(quote, i):
                if i >= len(text):
                    raise ValueError("a string is not closed")
                i += 2 if c == '"' and text[i] == "\\" else 1
            i += len(quote)
            if depth == 0:
                return i
            continue
        if c == "#":
            i = _eol(text, i)
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == "\n" and depth == 0:
            return i
        i += 1
    raise ValueError("a value is not closed")


def promise_entries(text):
    """[{key: (start, end)}] of each [[promise]] block of contract.toml's text: where each key's
    ``key = value`` begins and ends (comments, blank lines and other tables are not entries)."""
    rows, row, i = [], None, 0
    while i < len(text):
        eol = _eol(text, i)
        line = text[i:eol].split("#", 1)[0].strip()          # a table's header, without a comment
        match = KEY_LINE.match(text, i)
        if line.startswith("["):
            row = {} if line == "[[promise]]" else None
            if row is not None:
                rows.append(row)
        elif match and row is not None:
            end = _value_end(text, match.end())
            row[match.group(1)] = (i, end)
            eol = _eol(text, end)
        i = eol + 1
    return rows


def also_text(tests):
    """The ``also = [...]`` entry of a promise, one test a line, sorted; "" for none."""
    return "also = [" + ",\n        ".join(json.dumps(t) for t in sorted(tests)) + "]" if tests else ""


class ContractError(ValueError):
    pass


def _entry(text, row, key, default=None):
    """The value of ``key`` in a row of promise_entries (parsed alone: ``key = value`` is a TOML document)."""
    if key not in row:
        return default
    start, end = row[key]
    return tomllib.loads(text[start:end])[key]


def _also_edit(text, row, tests):
    """(start, end, replacement) that makes ``row``'s also entry list ``tests``."""
    new = also_text(tests)
    if "also" in row:
        start, end = row["also"]
        eol = _eol(text, end)
        rest = text[end:eol]
        if not new:     # drop the entry: its whole line, or up to the comment that follows it on the line
            end = min(eol + 1, len(text)) if not rest.strip() else end + len(rest) - len(rest.lstrip())
        return start, end, new
    if "tests" not in row:
        raise ContractError(f"promise {_entry(text, row, 'id')}: no tests entry to put also after")
    eol = _eol(text, row["tests"][1])
    return (eol + 1, eol + 1, new + "\n") if eol < len(text) else (eol, eol, "\n" + new)


def _normalised(doc, measured=None):
    """The parsed table with each also sorted (or left out when empty), ``measured``'s put in first."""
    for p in doc.get("promise", []):
        tests = (measured or {}).get(p.get("id"), p.get("also", []))
        p.pop("also", None)
        if tests:
            p["also"] = sorted(tests)
    return doc


def rewrite_also(text, measured):
    """(new text, ids changed): ``text`` with the also entry of each promise in ``measured`` ({id: tests
    its mutant failed outside its own tests}) rewritten where its set of tests differs; every other byte
    is kept (comments, order, formatting, ``tests``).  Raises ContractError rather than change anything
    else: the result must parse to the same table but for those also lists."""
    edits, changed = [], []
    for row in promise_entries(text):
        pid = _entry(text, row, "id")
        if pid in measured and set(_entry(text, row, "also", [])) != set(measured[pid]):
            edits.append(_also_edit(text, row, measured[pid]))
            changed.append(pid)
    new = text
    for start, end, replacement in sorted(edits, reverse=True):
        new = new[:start] + replacement + new[end:]
    try:
        same, why = _normalised(tomllib.loads(new)) == _normalised(tomllib.loads(text), measured), ""
    except tomllib.TOMLDecodeError as exc:
        same, why = False, f" ({exc})"
    if not same:
        raise ContractError(f"rewriting also would change more than the also lists; nothing was written{why}")
    return new, changed


def write_atomically(path, text):
    """Replace ``path`` with ``text`` in one step (a full temporary file beside it, then os.replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def update_also(measured, path=TABLE):
    """Rewrite the also lists of ``path`` from ``measured`` ({promise id: tests}); returns the ids
    changed.  The file is not touched when none changes."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    new, changed = rewrite_also(text, measured)
    if changed:
        write_atomically(path, new)
    return changed


def failed_tests(result_names, tests=None):
    """(test ids, names of no test) of a mutant's lost results (results.json names, see test_of_result)."""
    tests = test_functions() if tests is None else tests
    ids = {name: test_of_result(name, tests) for name in result_names}
    return {t for t in ids.values() if t}, sorted(name for name, t in ids.items() if not t)


def measured_also(promises, failed):
    """{promise id: sorted tests its mutant failed outside its own tests} for the promises whose mutant is
    in ``failed`` ({mutant: test ids it lost points in})."""
    return {p["id"]: sorted(failed[p["mutant"]] - set(p["tests"]) - set(p.get("sometimes", [])))
            for p in promises if p["mutant"] in failed}


def mutant_problems(promises, failed, unnamed=None, table=os.path.relpath(TABLE, ROOT)):
    """Every way one grading of the mutants (``failed``: {mutant: test ids it lost points in}; ``unnamed``:
    {mutant: results names that map to no test}) disagrees with the table, as sentences naming the row and
    the tests.  Its own tests are the promise: a mutant none of them catches is an error no update hides;
    also is the measured rest, which UPDATE rewrites: a test it fails outside tests and also is an error,
    a test of its also it passes only a note (mutant_notes)."""
    out = []
    for p in promises:
        where = f"{table}: promise {p['id']} (mutant {p['mutant']})"
        if p["mutant"] not in failed:
            out.append(f"{where}: the mutant was not graded")
            continue
        lost = failed[p["mutant"]]
        if not lost & set(p["tests"]):
            out.append(f"{where}: no longer fails any of its own tests ({', '.join(p['tests'])}); the tests are the "
                       "promise and no update changes them: fix the test or the mutant (tests/mutants/mutants.toml)")
        if (unnamed or {}).get(p["mutant"]):
            out.append(f"{where}: loses points in results named by no test function: "
                       f"{', '.join(unnamed[p['mutant']])} (is a docstring's first line shared or changed?)")
        extra = sorted(lost - set(p["tests"]) - set(p.get("also", [])) - set(p.get("sometimes", [])))
        if extra:
            out.append(f"{where}: also fails {', '.join(extra)}, in neither its tests nor its also; {UPDATE} "
                       "rewrites its also from this run")
    return out


def mutant_notes(promises, failed, table=os.path.relpath(TABLE, ROOT)):
    """Notes, not errors: the tests of a promise's row its mutant passes in this run.  An own test while
    another catches it; a test of its also, which some runs measure and others not (an accuracy test near its
    threshold under the cheap budget): the mutant loses no points where the table does not say."""
    notes = []
    for p in (p for p in promises if p["mutant"] in failed):
        where, lost = f"{table}: promise {p['id']}: its mutant {p['mutant']} passes", failed[p["mutant"]]
        missed = [t for t in p["tests"] if t not in lost]
        if missed and len(missed) < len(p["tests"]):
            notes.append(f"{where} {', '.join(missed)}, of its own tests (another of them catches it)")
        gone = [t for t in p.get("also", []) if t not in lost]
        if gone:
            notes.append(f"{where} {', '.join(gone)}, of its also; {UPDATE} would drop it")
    return notes


def markdown(promises):
    rows = ["| promise | function | the docstring says | checked by | mutant |", "|---|---|---|---|---|"]
    for p in promises:
        checked = "<br>".join(t.split("::")[1] + (" (private)" if t.startswith("private/") else "") for t in p["tests"])
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
