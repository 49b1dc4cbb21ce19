"""Flakiness check: the accuracy tests under several grader seeds.

    python tools/flaky.py [--seeds 10] [--jobs N]

Grades only the accuracy tests of the reference (all four files) and of two
alternatives (the full-batch CNN and numpy training shuffled every epoch),
with budget.<file>.seed set to 1..N.  Each seed also changes the config hash, so the grader's
relabelling of the classes (refmath.Relabelling) and the fashionmnist noise are drawn afresh too.  Prints the smallest margin over each
threshold; exits 1 if any run fails or a margin is below its target
(0.03, and 0.02 for the CNN).
"""
import argparse
import concurrent.futures
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import variants  # noqa: E402

ROOT = variants.ROOT
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import config as config_mod  # noqa: E402
from grader.assignment import STEMS  # noqa: E402

# the files whose accuracy test trains, under the grader's seed budget.<file>.seed
SEEDED = tuple(stem for stem, budget in config_mod.load()["budget"].items() if "seed" in budget)
SUBJECTS = (("reference", None, STEMS),
            ("cnn_full_batch_original_interface", "cnn_full_batch_original_interface", ("pytorch_cnn",)),
            ("numpy_shuffled_every_epoch", "numpy_shuffled_every_epoch", ("numpy_ann",)))
TARGET = {"pytorch_cnn": 0.02}
DEFAULT_TARGET = 0.03


def margin(test):
    """Accuracy minus threshold, from the accuracy test's extra_data (None when it has none: it failed early)."""
    extra = test.get("extra_data") or {}
    if isinstance(extra.get("accuracy"), (int, float)) and isinstance(extra.get("threshold"), (int, float)):
        return extra["accuracy"] - extra["threshold"]
    return None


def run(folder, files, seed, threads):
    tests = variants.grade(folder, ",".join(files), [f"budget.{stem}.seed={seed}" for stem in SEEDED if stem in files],
                           threads, extra=("-k", "accuracy_threshold"), tag=f"results-{seed}")
    return {t["tags"][0]: margin(t) for t in tests
            if t["tags"][1] == "private" and t["max_score"] > 0}    # not the 0-point instructor report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--file", action="append", default=[], help="only these file stems (repeatable)")
    args = p.parse_args(argv)
    specs, spec_dir = variants.load_specs("alternatives")
    by_name = {s["name"]: s for s in specs}
    margins = {}
    with tempfile.TemporaryDirectory(prefix="nnag-flaky-") as work:
        os.chmod(work, 0o755)
        jobs = []
        for label, alternative, files in SUBJECTS:
            files = tuple(f for f in files if not args.file or f in args.file)
            if not files:
                continue
            spec = by_name[alternative] if alternative else {"name": label}
            folder = os.path.join(work, label)
            variants.build(spec, spec_dir, folder)
            jobs += [(label, folder, files, seed) for seed in range(1, args.seeds + 1)]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            threads = 1 if args.jobs > 1 else 0
            results = pool.map(lambda j: (j, run(j[1], j[2], j[3], threads)), jobs)
            for (label, _, _, seed), found in results:
                for stem, margin in found.items():
                    margins.setdefault((label, stem), []).append((margin, seed))
    ok = True
    print(f"{'submission':<36} {'file':<13} {'runs':>4} {'min margin':>11} {'at seed':>8} {'target':>7}")
    for (label, stem), values in sorted(margins.items()):
        worst = min(values, key=lambda v: -1 if v[0] is None else v[0])
        target = TARGET.get(stem, DEFAULT_TARGET)
        good = all(m is not None for m, _ in values) and worst[0] >= target
        ok &= good
        shown = "no result" if worst[0] is None else f"{worst[0]:+.4f}"
        print(f"{label:<36} {stem:<13} {len(values):>4} {shown:>11} {worst[1]:>8} {target:>7.2f}"
              f"{'' if good else '  BELOW TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
