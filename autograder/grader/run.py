"""Grade one submission: python -m grader.run --submission DIR --results FILE.

Writes a valid results.json (score 0) before any student code runs, then the
real one atomically at the end, and prints a score table.  Exits 0 whenever a
results file was written.  The work is grading.GradingRun's; this module is the
command line.

``--assignment DIR`` grades another assignment, the one of folder DIR (its assignment.toml,
config.toml and tests/; see grader/assignment.py): it is read from the command line before any
grader module is imported, and is the same as NNAG_ASSIGNMENT=DIR.
"""
import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "grader"


def assignment_argument(argv):
    """The folder given by --assignment DIR (or --assignment=DIR) in ``argv``, else None."""
    for i, arg in enumerate(argv):
        if arg == "--assignment" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--assignment="):
            return arg.partition("=")[2]
    return None


if __name__ == "__main__" and assignment_argument(sys.argv[1:]):     # before grader.assignment reads it
    os.environ["NNAG_ASSIGNMENT"] = os.path.abspath(assignment_argument(sys.argv[1:]))

from . import assignment, results  # noqa: E402
from .grading import GRADER_DIR, GradingRun  # noqa: E402

if GRADER_DIR not in sys.path:          # the tests import grader.* as a package
    sys.path.insert(0, GRADER_DIR)


def score_table(result):
    """Number, score, status and the test's full name (last, so that nothing is cut), then totals per file."""
    rows = [f"{'#':>5}  {'score':>11}  {'status':<6}  test"]
    per_file = {}
    for t in result["tests"]:
        rows.append(f"{t['number']:>5}  {t['score']:>5g}/{t['max_score']:<5g}  {t['status']:<6}  {t['name']}")
        f = t["tags"][0]
        got, of = per_file.get(f, (0.0, 0.0))
        per_file[f] = (got + t["score"], of + t["max_score"])
    rows.append("")
    for f, (got, of) in per_file.items():
        rows.append(f"  {f:<14} {got:g} / {of:g}")
    total = sum(t["max_score"] for t in result["tests"])
    rows.append(f"  {'TOTAL':<14} {result['score']:g} / {total:g}")
    return "\n".join(rows)


TESTS_CHOICES = ("public", "private", "all")


def _tests_choice(value):
    """--tests' value; the old name of the private tests is an error that names the new choices."""
    if value == "hidden":
        raise argparse.ArgumentTypeError(
            "invalid choice: 'hidden' (choose from 'public', 'private', 'all'): the tests not shipped to students "
            "are now 'private' (tests/private/); Gradescope's visibility of a test is its marker, not its folder")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(description="Grade one submission of the neural-networks assignment.")
    p.add_argument("--assignment", default=None, metavar="DIR",
                   help="the folder of the assignment to grade (assignment.toml, config.toml, tests/); default: "
                        "this course's (autograder/)")
    p.add_argument("--submission", required=True, help="folder with the student's files (any nesting)")
    p.add_argument("--results", required=True, help="where to write results.json")
    p.add_argument("--tests", type=_tests_choice, choices=TESTS_CHOICES, default="all",
                   help="public: tests/public/ (shipped to students); private: tests/private/ (not shipped); all: both")
    p.add_argument("--files", default=",".join(assignment.STEMS), help="comma-separated file stems to grade")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression to select tests")
    p.add_argument("--config", default=None, help="config file (default autograder/config.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config setting (repeatable), e.g. partial_credit.fraction=0.5")
    p.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR"), help="Fashion-MNIST folder")
    p.add_argument("--lock", nargs="*", default=[], help="folders to make root-only before grading (Gradescope)")
    p.add_argument("--quiet", action="store_true", help="do not print the score table")
    p.add_argument("--no-report", action="store_true",
                   help="leave out the instructor report (students' local runs: it is for staff)")
    p.add_argument("--no-training", action="store_true",
                   help="leave out every test marked training or calls_train (students debugging the math)")
    p.add_argument("--skip-training", default="", metavar="STEMS",
                   help="comma-separated file stems whose @training tests are left out (self-tests)")
    p.add_argument("--also-writable", action="append", default=[], metavar="DIR",
                   help="a folder every worker may also write (the red-team suite's canary); never for grading")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.assignment is not None and os.path.realpath(args.assignment) != os.path.realpath(assignment.FOLDER):
        print(f"grader: --assignment {args.assignment}: the grader was loaded for {assignment.FOLDER}; give "
              f"--assignment DIR in full on the command line of python -m grader.run, or set "
              f"{assignment.FOLDER_VARIABLE} before the grader is imported", file=sys.stderr)
        return 2
    run = GradingRun(args)
    result, problem = run.execute()
    if problem:
        print(f"grader: {problem}", file=sys.stderr)
        if result is None:
            return 2
    if result is not None and run.report is not None and not args.quiet and not args.no_report:
        print(f"{results.REPORT_NAME}:\n{run.report['output']}")
    for tb in run.internal_errors:
        print("INTERNAL GRADER ERROR\n" + tb)
    if not args.quiet:
        print(score_table(result) if result["tests"] else result["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
