"""Run the public autograder tests on your files in this folder.

    python run_public_tests.py                     every public test of the four files
    python run_public_tests.py numpy_ann           the tests of one file (numpy_ann or numpy_ann.py)
    python run_public_tests.py -k relu             only the tests whose name contains "relu"
    python run_public_tests.py --no-training       leave out the tests that call your train()
    python run_public_tests.py -v                  also show what the passing tests printed

For each failing test it prints the test's name and the same message Gradescope
shows (expected against got, and a hint), then one summary line.  The full
results are written to public_results.json.  Exit code 0 when every test that
ran passed, 1 otherwise.  These are exactly the public tests Gradescope runs;
the private tests (not in this handout; among them the accuracy tests, which train
on all of Fashion-MNIST) run only on Gradescope.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# the unpacked handout.zip keeps the grader in autograder/ next to this file; the repository one level up
AUTOGRADER = next((p for p in (os.path.join(HERE, "autograder"), os.path.join(os.path.dirname(HERE), "autograder"))
                   if os.path.isdir(p)), os.path.join(HERE, "autograder"))
sys.path.insert(0, AUTOGRADER)
from grader.assignment import STEMS as FILES  # noqa: E402
DASH = "\u2014"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="run_public_tests.py", description="Run the public autograder tests locally.")
    p.add_argument("files", nargs="*", metavar="FILE", help=f"which files to test (default all): {', '.join(FILES)}")
    p.add_argument("-k", dest="keyword", metavar="PATTERN",
                   help="only the tests whose name matches PATTERN (pytest -k syntax: relu, 'relu and not grad')")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the output of the passing tests")
    p.add_argument("--no-training", action="store_true",
                   help="leave out the tests that call your train() (for debugging the math first)")
    p.add_argument("--json", default=os.path.join(HERE, "public_results.json"), metavar="PATH",
                   help="where to write the results (default public_results.json here)")
    args = p.parse_args(argv)
    stems = []
    for name in args.files:
        stem = os.path.basename(name)
        stem = stem[:-3] if stem.endswith(".py") else stem
        if stem not in FILES:
            p.error(f"unknown file {name!r}: choose from {', '.join(FILES)}")
        if stem not in stems:
            stems.append(stem)
    args.stems = stems or list(FILES)
    return args


def indent(text, prefix="    "):
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def not_sandboxed(result):
    """One line when this machine cannot run student code as the grader does on Gradescope, else None."""
    iso = (result.get("extra_data") or {}).get("isolation") or {}
    uids, seccomp = iso.get("worker_uids"), str(iso.get("seccomp", ""))
    if isinstance(uids, dict) and not seccomp.startswith("off"):
        return None
    return ("Note: local runs are not sandboxed: your code runs as you, with your rights "
            "(Gradescope runs it confined).")


def report(result, args, left_out):
    """(text, exit code) for a results.json produced by the grader."""
    lines = []
    for extra in result.get("output", "").splitlines()[1:]:   # the first line is the grader's version
        lines.append(extra)
    sandbox = not_sandboxed(result)
    if sandbox:
        lines.append(sandbox)
    tests = result.get("tests", [])
    failed = [t for t in tests if t["status"] != "passed"]
    for t in tests:
        if t["status"] == "passed" and not args.verbose:
            continue
        word = "PASSED" if t["status"] == "passed" else "FAILED"
        lines.append(f"{word} {t['number']} {t['name']} ({t['score']:g}/{t['max_score']:g})")
        if t.get("output"):
            lines.append(indent(t["output"]))
    got = sum(t["score"] for t in tests)
    of = sum(t["max_score"] for t in tests)
    parts = [f"{len(tests) - len(failed)} passed"] + ([f"{len(failed)} failed"] if failed else [])
    if left_out:
        parts.append(f"{left_out} not run (--no-training)")
    if not tests:
        why = f"no public test matches -k {args.keyword!r}" if args.keyword else "no test ran"
        lines.append(f"{why}; nothing was checked.")
        return "\n".join(lines), 1
    dash = DASH if _can_print(DASH) else "-"
    lines.append(f"{', '.join(parts)} {dash} {got:g}/{of:g} points; details in {os.path.relpath(args.json)}")
    return "\n".join(lines), (1 if failed else 0)


def _can_print(text):
    try:
        text.encode(sys.stdout.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def main(argv=None):
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")   # a Windows console cannot print every character
    from grader import run
    common = ["--submission", HERE, "--tests", "public", "--files", ",".join(args.stems), "--no-report", "--quiet"]
    if args.keyword:
        common += ["-k", args.keyword]
    run.main(common + ["--results", args.json] + (["--no-training"] if args.no_training else []))
    try:
        with open(args.json, encoding="utf-8") as fh:
            result = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"run_public_tests.py: the grader wrote no readable {args.json} ({exc})", file=sys.stderr)
        return 1
    left_out = (result.get("extra_data") or {}).get("tests_left_out", 0)
    text, code = report(result, args, left_out)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
