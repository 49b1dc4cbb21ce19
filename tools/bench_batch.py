"""Batch benchmark: grade 20 submissions (correct, buggy, broken) with JOBS=1 and JOBS=2.

    python tools/bench_batch.py [--count 20]

Builds a Gradescope-style export from the reference, seeded bugs from
tests/mutants/, files that crash or hang in train() and files broken at import, runs tools/grade_all.py on it with --jobs 1
and --jobs 2 (--force), prints wall time, throughput and the speed-up, and
checks each run's CSV (statuses; correct ones full marks, the others fewer).
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import variants  # noqa: E402

ROOT = variants.ROOT
BROKEN = {"syntax_error": "def oops(:\n", "exits_at_import": "import os\nos._exit(3)\n"}
# appended to the reference numpy_ann.py: train() kills its own process / never returns
CRASHING = ("\nimport os as _os, signal as _signal\n"
            "NumpyANN.train = lambda self, *a, **k: _os.kill(_os.getpid(), _signal.SIGKILL)\n")
HANGING = "\ndef _forever(self, *a, **k):\n    while True:\n        pass\nNumpyANN.train = _forever\n"
KINDS = ("correct", "buggy", "crashing", "buggy", "broken", "hanging", "correct", "buggy", "broken", "no-files")


def build_export(folder, count):
    mutants, spec_dir = variants.load_specs("mutants")
    plan = []
    for i in range(count):
        plan.append((f"submission_{i + 1:03d}", KINDS[i % len(KINDS)], i))
    for sid, kind, i in plan:
        dest = os.path.join(folder, sid)
        if kind == "no-files":
            os.makedirs(dest)
            with open(os.path.join(dest, "notes.txt"), "w") as fh:
                fh.write("wrong upload\n")
            continue
        spec = mutants[(i * 7) % len(mutants)] if kind == "buggy" else {"name": sid}
        variants.build(dict(spec, name=sid), spec_dir, dest)
        if kind in ("crashing", "hanging"):
            with open(os.path.join(dest, "numpy_ann.py"), "a") as fh:
                fh.write(CRASHING if kind == "crashing" else HANGING)
        if kind == "broken":
            name = sorted(BROKEN)[(i // 4) % 2]
            with open(os.path.join(dest, ("numpy_ann.py", "pytorch_ann.py")[(i // 8) % 2]), "w") as fh:
                fh.write(BROKEN[name])
    return {sid: kind for sid, kind, _ in plan}


def check_csv(out, kinds):
    """Every submission has a row; correct ones full marks, the others fewer; statuses as expected."""
    name = sorted(f for f in os.listdir(out) if f.endswith(".csv"))[-1]
    with open(os.path.join(out, name), newline="") as fh:
        rows = {r["submission_id"]: r for r in csv.DictReader(fh)}
    problems = []
    full = max(float(r["total"]) for r in rows.values() if r["total"])
    for sid, kind in kinds.items():
        row = rows.get(sid)
        want = "no-files" if kind == "no-files" else "graded"
        if row is None or row["status"] != want:
            problems.append(f"{sid} ({kind}): status {row and row['status']}, expected {want}")
        elif kind == "correct" and float(row["total"]) != full:
            problems.append(f"{sid} (correct): {row['total']} of {full}")
        elif kind not in ("correct", "no-files") and float(row["total"]) >= full:
            problems.append(f"{sid} ({kind}): full marks")
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnag-batch-") as work:
        os.chmod(work, 0o755)
        export = os.path.join(work, "export")
        kinds = build_export(export, args.count)
        values = list(kinds.values())
        print(f"{args.count} submissions: " + ", ".join(f"{k} {values.count(k)}" for k in dict.fromkeys(values)))
        print(f"{'jobs':>4} {'wall s':>8} {'per minute':>11} {'speed-up':>9}")
        walls, failed = {}, False
        for jobs in (1, 2):
            start = time.time()
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "grade_all.py"), export, "--jobs", str(jobs),
                            "--force", "--out", os.path.join(work, f"out{jobs}")], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[jobs] = time.time() - start
            print(f"{jobs:>4} {walls[jobs]:>8.1f} {args.count / walls[jobs] * 60:>11.2f} "
                  f"{walls[1] / walls[jobs]:>9.2f}")
            for problem in check_csv(os.path.join(work, f"out{jobs}"), kinds):
                print(f"     WRONG: {problem}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
