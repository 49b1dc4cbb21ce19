"""List the submissions whose score changed between two grade-all CSVs.

    python tools/compare.py OLD.csv NEW.csv

For each submission in both: the change in total and in every test that
changed.  Submissions only in one file are listed too.  Exit 0.
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "autograder"))
from grader.checks import CLASS_NAMES  # noqa: E402

FIXED = ("submission_id", "names", "emails", "total", "status", "wall_time_s", "grader_version")


def is_score(column):
    """A test's score column; the per-class accuracy columns ("<num> <class> accuracy") are information."""
    return column not in FIXED and not any(column.endswith(f" {c} accuracy") for c in CLASS_NAMES)


def read(path):
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise SystemExit(f"compare: cannot read {path}: {exc.strerror}")
    if rows and "submission_id" not in rows[0]:
        raise SystemExit(f"compare: {path} is not a grade-all CSV (no submission_id column)")
    return {r["submission_id"]: r for r in rows}


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def compare(old, new):
    """[(submission id, old total, new total, [(test, old, new)], note)] for every difference."""
    changes = []
    for sid in sorted(set(old) | set(new)):
        if sid not in old or sid not in new:
            changes.append((sid, None, None, [], "only in the new file" if sid in new else "only in the old file"))
            continue
        a, b = old[sid], new[sid]
        tests = [k for k in dict.fromkeys(list(a) + list(b)) if is_score(k)]
        diffs = [(t, number(a.get(t)), number(b.get(t))) for t in tests if number(a.get(t)) != number(b.get(t))]
        note = f"status {a['status']} -> {b['status']}" if a["status"] != b["status"] else ""
        if diffs or note or number(a["total"]) != number(b["total"]):
            changes.append((sid, number(a["total"]), number(b["total"]), diffs, note))
    return changes


def fmt(x):
    return "-" if x is None else f"{x:g}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("old")
    p.add_argument("new")
    args = p.parse_args(argv)
    changes = compare(read(args.old), read(args.new))
    if not changes:
        print("no score changed")
        return 0
    print(f"{len(changes)} submission(s) changed")
    for sid, a, b, diffs, note in changes:
        delta = f"{b - a:+g}" if a is not None and b is not None else ""
        print(f"{sid}: total {fmt(a)} -> {fmt(b)} {delta} {note}".rstrip())
        for test, x, y in diffs:
            print(f"    {test}: {fmt(x)} -> {fmt(y)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
