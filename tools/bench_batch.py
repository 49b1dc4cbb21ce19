"""Batch benchmark: grade 20 submissions (correct, buggy, broken) with JOBS=1 and JOBS=2.

    python tools/bench_batch.py [--count 20]

Builds a Gradescope-style export from the reference, seeded bugs from
tests/mutants/ and broken files, runs tools/grade_all.py on it with --jobs 1
and --jobs 2 (--force), and prints wall time, throughput and the speed-up.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import variants  # noqa: E402

ROOT = variants.ROOT
BROKEN = {"syntax_error": "def oops(:\n", "exits_at_import": "import os\nos._exit(3)\n"}


def build_export(folder, count):
    mutants, spec_dir = variants.load_specs("mutants")
    plan = []
    for i in range(count):
        kind = ("correct", "buggy", "buggy", "broken", "no-files")[i % 5]
        plan.append((f"submission_{i + 1:03d}", kind, i))
    for sid, kind, i in plan:
        dest = os.path.join(folder, sid)
        if kind == "no-files":
            os.makedirs(dest)
            with open(os.path.join(dest, "notes.txt"), "w") as fh:
                fh.write("wrong upload\n")
            continue
        spec = mutants[(i * 7) % len(mutants)] if kind == "buggy" else {"name": sid, "file": "numpy_ann.py"}
        variants.build(dict(spec, name=sid), spec_dir, dest)
        if kind == "broken":
            name = sorted(BROKEN)[i % len(BROKEN)]
            with open(os.path.join(dest, ("numpy_ann.py", "pytorch_ann.py")[i % 2]), "w") as fh:
                fh.write(BROKEN[name])
    return [kind for _, kind, _ in plan]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnag-batch-") as work:
        os.chmod(work, 0o755)
        export = os.path.join(work, "export")
        kinds = build_export(export, args.count)
        print(f"{args.count} submissions: " + ", ".join(f"{k} {kinds.count(k)}" for k in dict.fromkeys(kinds)))
        print(f"{'jobs':>4} {'wall s':>8} {'per minute':>11} {'speed-up':>9}")
        walls = {}
        for jobs in (1, 2):
            start = time.time()
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "grade_all.py"), export, "--jobs", str(jobs),
                            "--force", "--out", os.path.join(work, f"out{jobs}")], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[jobs] = time.time() - start
            print(f"{jobs:>4} {walls[jobs]:>8.1f} {args.count / walls[jobs] * 60:>11.2f} "
                  f"{walls[1] / walls[jobs]:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
