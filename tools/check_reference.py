"""Grade solution/ and handout/ end to end; fail unless they get full marks and zero."""
import os
import sys

from grade_folder import ROOT, grade_folder


def grade(folder, results):
    result, proc = grade_folder(folder, results, quiet=False)
    print(proc.stdout)
    return result


def main():
    ok = True
    out = os.path.join(ROOT, "build")
    ref = grade(os.path.join(ROOT, "solution"), os.path.join(out, "reference_results.json"))
    total = sum(t["max_score"] for t in ref["tests"])
    if not ref["tests"] or ref["score"] != total:
        print(f"check_reference: the reference got {ref['score']} of {total}", file=sys.stderr)
        ok = False
    handout = grade(os.path.join(ROOT, "handout"), os.path.join(out, "handout_results.json"))
    if not handout["tests"] or handout["score"] != 0:
        print(f"check_reference: the untouched handout got {handout['score']} (expected 0)", file=sys.stderr)
        ok = False
    print("reference: full marks; handout: zero" if ok else "check_reference: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
