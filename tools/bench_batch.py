"""Batch benchmark: grade-all on a local Dask cluster of 1, 2 and 4 workers.

    python tools/bench_batch.py [--count 12] [--workers 1,2,4]

Builds a Gradescope-style export from the reference, seeded bugs from tests/mutants/,
files that crash or hang in train() and files broken at import, grades it with
tools/grade_all.py --workers N --force for each N, and prints wall time, submissions per
hour, the speed-up and the peak memory of one worker (a Dask worker process with the
grader it runs and that grader's workers, sampled every 0.2 s from /proc).  Checks each
run's CSV (statuses; correct ones full marks, the others fewer).  Linux only.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
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


def process_table():
    """{pid: (parent pid, RSS kB, command line)} of every process, from /proc."""
    table = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as fh:
                rss = next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        table[int(pid)] = (parent, rss, args)
    return table


class WorkerMemory(threading.Thread):
    """Peak RSS (MB) of one Dask worker at a time: the worker process, the grader it runs and everything below."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mb, self.stop = 0.0, threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            table = process_table()
            children = {}
            for pid, (parent, _, _) in table.items():
                children.setdefault(parent, []).append(pid)

            def tree(pid):
                return table[pid][1] + sum(tree(c) for c in children.get(pid, []))

            for pid, (parent, _, args) in table.items():
                if "grader.run" in args and parent in table:          # the grader's parent: its Dask worker
                    self.peak_mb = max(self.peak_mb, tree(parent) / 1024)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--workers", default="1,2,4", help="comma-separated local cluster sizes")
    args = p.parse_args(argv)
    sizes = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="nnag-batch-") as work:
        os.chmod(work, 0o755)
        export = os.path.join(work, "export")
        kinds = build_export(export, args.count)
        values = list(kinds.values())
        print(f"{args.count} submissions: " + ", ".join(f"{k} {values.count(k)}" for k in dict.fromkeys(values)))
        print(f"{'workers':>7} {'wall s':>8} {'per hour':>9} {'speed-up':>9} {'peak MB per worker':>19}")
        walls, failed = {}, False
        for n in sizes:
            memory = WorkerMemory()
            memory.start()
            start = time.time()
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "grade_all.py"), export, "--workers", str(n),
                            "--force", "--out", os.path.join(work, f"out{n}")], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[n] = time.time() - start
            memory.stop.set()
            memory.join()
            print(f"{n:>7} {walls[n]:>8.1f} {args.count / walls[n] * 3600:>9.1f} {walls[sizes[0]] / walls[n]:>9.2f} "
                  f"{memory.peak_mb:>19.0f}", flush=True)
            for problem in check_csv(os.path.join(work, f"out{n}"), kinds):
                print(f"        WRONG: {problem}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
