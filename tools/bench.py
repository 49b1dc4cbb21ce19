"""Benchmark: grade the reference solution, one file group at a time and in total.

Prints wall time and peak RSS (grader plus workers, sampled every 0.1 s from
/proc) per group, the floor (the same training and evaluation run alone on the
reference, tools/bench_floor.py) and the ratio of the two.  Linux only.
Usage: python tools/bench.py [--threads N]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from grade_folder import AUTOGRADER, ROOT, command

sys.path.insert(0, AUTOGRADER)
from grader.assignment import STEMS as GROUPS  # noqa: E402


def tree_rss_kb(root_pid):
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss[int(entry)] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    total = 0
    for pid, kb in rss.items():
        p = pid
        while p and p != root_pid:
            p = parents.get(p, 0)
        if p == root_pid:
            total += kb
    return total


def run(files, threads):
    env = dict(os.environ)
    if threads:
        env["NNAG_WORKER_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = command(os.path.join(ROOT, "solution"), os.path.join(tmp, "r.json"), "--files", ",".join(files))
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=AUTOGRADER, env=env, stdout=subprocess.DEVNULL)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss_kb(proc.pid))
            time.sleep(0.1)
        wall = time.time() - start
        import json
        with open(os.path.join(tmp, "r.json")) as fh:
            result = json.load(fh)
    return wall, peak, result["score"], sum(t["max_score"] for t in result["tests"])


def floor(group, threads):
    """Seconds of the same training/evaluation run alone, on the reference, without the grader."""
    env = dict(os.environ)
    if threads:
        env.update(NNAG_WORKER_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_floor.py"), group], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=0, help="limit the worker's torch/BLAS threads (e.g. 1)")
    args = p.parse_args()
    print(f"worker threads: {args.threads or 'default'}")
    print(f"{'group':<14} {'wall s':>8} {'peak RSS MB':>12} {'score':>12} {'floor s':>8} {'ratio':>6}")
    floors = {}
    for files in [[g] for g in GROUPS] + [list(GROUPS)]:
        wall, peak, score, total = run(files, args.threads)
        if len(files) == 1:
            name = files[0]
            floors[name] = floor(name, args.threads)
            base = floors[name]
        else:
            name, base = "TOTAL", sum(floors.values())
        print(f"{name:<14} {wall:>8.1f} {peak / 1024:>12.0f} {score:>6g}/{total:<5g} {base:>8.1f} {wall / base:>6.2f}")


if __name__ == "__main__":
    main()
