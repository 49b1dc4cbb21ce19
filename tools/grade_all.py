"""Grade a Gradescope "Export Submissions" folder locally.

    python tools/grade_all.py SUBMISSIONS [--jobs N] [--force] [--out build/grades]
                              [--timeout S] [--grader-arg=ARG ...]

SUBMISSIONS holds one folder per submission and submission_metadata.yml.
The CSV's "flags" column carries each submission's instructor report (limits
hit, refused actions, suspicious files), empty when there was nothing.
Each submission is graded by its own grader process, JOBS at a time.  Results
go to OUT/results/<id>.json; a submission already graded with the same grader
version, config hash and files is skipped unless --force.  Every run writes a
new OUT/grades-<time>.csv and OUT/summary-<time>.txt/.png, so earlier runs
survive for tools/compare.py.  A submission that crashes, hangs or runs out of
memory never stops the batch; its row says what happened.
"""
import argparse
import concurrent.futures
import csv
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import VERSION  # noqa: E402
from grader.checks import CLASS_NAMES  # noqa: E402
from grader.results import REPORT_NAME  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.assignment import FILES  # noqa: E402
from grader.submission import find_files  # noqa: E402
from grade_folder import AUTOGRADER, command  # noqa: E402

STATUSES = ("graded", "timeout", "crashed", "no-files")


class ExportError(ValueError):
    pass


def read_metadata(folder):
    """{submission id: {"names": [...], "emails": [...]}} from submission_metadata.yml (may be absent)."""
    path = os.path.join(folder, "submission_metadata.yml")
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExportError(f"{path}: cannot read it as YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ExportError(f"{path}: expected a mapping of submission folders to their details")
    out = {}
    for sid, info in raw.items():
        info = {str(k).lstrip(":"): v for k, v in (info or {}).items()} if isinstance(info, dict) else {}
        people = info.get("submitters") or []
        people = [{str(k).lstrip(":"): v for k, v in p.items()} for p in people if isinstance(p, dict)]
        out[str(sid)] = {"names": [str(p.get("name", "")) for p in people],
                         "emails": [str(p.get("email", "")) for p in people]}
    return out


def fingerprint(found):
    digest = hashlib.sha256()
    for name in sorted(found):
        digest.update(name.encode())
        with open(found[name], "rb") as fh:
            digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()[:16]


def atomic_write_text(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def grade_one(sid, folder, out, state_key, timeout, grader_args, force, env=None):
    results = os.path.join(out, "results", f"{sid}.json")
    state_path = os.path.join(out, "results", f"{sid}.state.json")
    found, _ = find_files(folder)
    key = dict(state_key, files=fingerprint(found))
    if not force and os.path.exists(state_path):
        with open(state_path) as fh:
            state = json.load(fh)
        done = state.get("status") == "no-files" or (state.get("status") == "graded" and os.path.exists(results))
        if state.get("key") == key and done:
            return dict(state, skipped=True)   # timeouts and crashes are tried again
    start = time.time()
    if not any(f.code in found for f in FILES):
        status, detail = "no-files", "none of the graded files was found"
        if os.path.exists(results):
            os.remove(results)
    else:
        proc = subprocess.Popen(command(folder, results, *grader_args), cwd=AUTOGRADER, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            _, stderr = proc.communicate(timeout=timeout)
            with open(results) as fh:
                result = json.load(fh)
            status, detail = "graded", ""
            if proc.returncode != 0 or not result.get("tests"):
                status, detail = "crashed", (stderr.strip().splitlines() or [result.get("output", "")])[-1]
        except subprocess.TimeoutExpired:
            proc.terminate()            # the grader kills its workers on SIGTERM
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            status, detail = "timeout", f"grading took longer than {timeout:g} s"
        except (OSError, ValueError) as exc:
            status, detail = "crashed", str(exc)
    state = {"key": key, "status": status, "detail": detail, "wall": round(time.time() - start, 1)}
    atomic_write_text(state_path, json.dumps(state))
    return dict(state, skipped=False)


class Progress:
    def __init__(self, total):
        self.total, self.done, self.start, self.lock = total, 0, time.time(), threading.Lock()

    def tick(self, label):
        with self.lock:
            self.done += 1
            elapsed = time.time() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            width = 30
            bar = "#" * (width * self.done // self.total)
            sys.stderr.write(f"\r[{bar:<{width}}] {self.done}/{self.total}  elapsed {elapsed:4.0f} s  "
                             f"ETA {eta:4.0f} s  {label[:30]:<30}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def load_result(out, sid):
    path = os.path.join(out, "results", f"{sid}.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def flags_of(result):
    """The instructor report's lines (limits hit, refused actions), '' when there is nothing."""
    for t in (result or {}).get("tests", []):
        if t["name"] == REPORT_NAME and t["status"] == "failed":
            return " | ".join(t["output"].splitlines())
    return ""


def class_counts(test):
    """(correct, total) per class from an accuracy test's extra_data, or None when it has none."""
    extra = test.get("extra_data") or {}
    correct, total = extra.get("class_correct"), extra.get("class_total")
    if not (isinstance(correct, list) and isinstance(total, list) and len(correct) == len(total) == len(CLASS_NAMES)):
        return None
    return correct, total


def class_cells(counts):
    """The CSV's ten per-class accuracies of one test ('' where the test or the class has none)."""
    if not counts:
        return [""] * len(CLASS_NAMES)
    return [round(int(c) / int(t), 4) if t else "" for c, t in zip(*counts)]


def cohort_classes(class_columns, tests, graded, results):
    """Summary lines: per accuracy test, the cohort's accuracy per class, pooled over graded submissions,
    and the class it gets most wrong."""
    lines = []
    for n in class_columns:
        correct, total = [0] * len(CLASS_NAMES), [0] * len(CLASS_NAMES)
        for r in graded:
            for t in results[r["id"]]["tests"]:
                counts = class_counts(t) if t["name"] == n else None
                if counts:
                    correct = [a + int(b) for a, b in zip(correct, counts[0])]
                    total = [a + int(b) for a, b in zip(total, counts[1])]
        accuracy = {c: k / m for c, k, m in zip(CLASS_NAMES, correct, total) if m}
        if not accuracy:
            continue
        worst = min(accuracy, key=accuracy.get)
        lines.append(f"\n{tests[n]} {n}: the class the cohort gets most wrong: {worst} "
                     f"(accuracy {accuracy[worst]:.3f}, pooled over {len(graded)} graded submissions)")
        lines.append("  per class: " + ", ".join(f"{c} {a:.3f}" for c, a in accuracy.items()))
    return lines


def write_reports(out, stamp, rows, results):
    tests = {}
    per_class = set()                 # the tests that report accuracy per class (the accuracy tests)
    for result in results.values():
        for t in (result or {}).get("tests", []):
            if t["name"] != REPORT_NAME:
                tests.setdefault(t["name"], t["number"])
                if class_counts(t):
                    per_class.add(t["name"])
    columns = sorted(tests, key=lambda n: [int(x) if x.isdigit() else x for x in tests[n].split(".")])
    class_columns = [n for n in columns if n in per_class]
    header = ["submission_id", "names", "emails"] + [f"{tests[n]} {n}" for n in columns] + \
        [f"{tests[n]} {c} accuracy" for n in class_columns for c in CLASS_NAMES] + \
        ["total", "status", "wall_time_s", "grader_version", "flags"]
    lines = []
    for row in rows:
        result = results.get(row["id"]) or {}
        scores = {t["name"]: t["score"] for t in result.get("tests", [])}
        counts = {t["name"]: class_counts(t) for t in result.get("tests", [])}
        lines.append([row["id"], "; ".join(row["names"]), "; ".join(row["emails"])]
                     + [scores.get(n, "") for n in columns]
                     + [cell for n in class_columns for cell in class_cells(counts.get(n))]
                     + [result.get("score", 0.0) if row["status"] == "graded" else "", row["status"], row["wall"],
                        VERSION, flags_of(result)])
    import io
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(lines)
    csv_path = os.path.join(out, f"grades-{stamp}.csv")
    atomic_write_text(csv_path, buf.getvalue())

    graded = [r for r in rows if r["status"] == "graded"]
    totals = [results[r["id"]]["score"] for r in graded]
    summary = [f"{len(rows)} submissions: " + ", ".join(f"{s} {sum(r['status'] == s for r in rows)}"
                                                          for s in STATUSES)]
    if totals:
        summary.append(f"total score: mean {sum(totals) / len(totals):.2f}, min {min(totals):g}, max {max(totals):g}")
    summary.append("\npass rate per test (graded submissions):")
    for n in columns:
        passed = sum(1 for r in graded for t in results[r["id"]]["tests"] if t["name"] == n and t["status"] == "passed")
        summary.append(f"  {tests[n]:>5} {passed:>4}/{len(graded):<4} {n}")
    summary += cohort_classes(class_columns, tests, graded, results)
    flagged = [r["id"] for r in rows if flags_of(results.get(r["id"]))]
    summary.append(f"\nflagged by the instructor report (limits hit, refused actions): {len(flagged)}"
                   + (": " + ", ".join(flagged) if flagged else ""))
    summary.append("\nslowest submissions:")
    for r in sorted(rows, key=lambda r: -r["wall"])[:5]:
        summary.append(f"  {r['wall']:7.1f} s  {r['id']}  ({r['status']})")
    atomic_write_text(os.path.join(out, f"summary-{stamp}.txt"), "\n".join(summary) + "\n")
    if totals:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(totals, bins=min(20, max(5, len(set(totals)))))
        ax.set_xlabel("total score")
        ax.set_ylabel("submissions")
        ax.set_title(f"Scores of {len(totals)} graded submissions")
        fig.tight_layout()
        tmp = os.path.join(out, f".hist-{stamp}.png")
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, os.path.join(out, f"histogram-{stamp}.png"))
    return csv_path, "\n".join(summary)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--force", action="store_true", help="regrade submissions that were already graded")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "grades"))
    p.add_argument("--timeout", type=float, default=1800, help="seconds for one submission's whole grading")
    p.add_argument("--grader-arg", action="append", default=[], help="extra argument for grader.run")
    args = p.parse_args(argv)
    if not os.path.isdir(args.submissions):
        print(f"grade_all: SUBMISSIONS={args.submissions} is not a folder; give the unzipped "
              "Gradescope export (one folder per submission plus submission_metadata.yml)", file=sys.stderr)
        return 2
    try:
        metadata = read_metadata(args.submissions)
        config = config_mod.load()
    except (ExportError, config_mod.ConfigError) as exc:
        print(f"grade_all: {exc}", file=sys.stderr)
        return 2
    if os.name == "posix" and os.geteuid() != 0:
        print("grade_all: WARNING: not running as root, so student code runs with your own rights and can read "
              "or change your files. Grade untrusted submissions as root (workers then run as an unprivileged "
              "user) or on Gradescope.", file=sys.stderr)
    ids = sorted(d for d in os.listdir(args.submissions) if os.path.isdir(os.path.join(args.submissions, d)))
    if not ids:
        print(f"grade_all: {args.submissions} holds no submission folders", file=sys.stderr)
        return 2
    os.makedirs(os.path.join(args.out, "results"), exist_ok=True)
    state_key = {"grader_version": VERSION, "config_hash": config["_hash"], "grader_args": args.grader_arg}
    progress = Progress(len(ids))
    # parallel graders share the cores: give each worker its share of threads
    env = dict(os.environ, NNAG_WORKER_THREADS=str(max(1, (os.cpu_count() or 1) // args.jobs))) \
        if args.jobs > 1 else None
    states = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(grade_one, sid, os.path.join(args.submissions, sid), args.out, state_key,
                               args.timeout, args.grader_arg, args.force, env): sid for sid in ids}
        for future in concurrent.futures.as_completed(futures):
            sid = futures[future]
            try:
                states[sid] = future.result()
            except Exception as exc:  # noqa: BLE001 - one submission never stops the batch
                states[sid] = {"status": "crashed", "detail": f"{type(exc).__name__}: {exc}", "wall": 0.0,
                               "skipped": False}
            progress.tick(sid)
    rows = [dict(id=sid, status=states[sid]["status"], detail=states[sid].get("detail", ""),
                 wall=states[sid]["wall"], names=metadata.get(sid, {}).get("names", []),
                 emails=metadata.get(sid, {}).get("emails", [])) for sid in ids]
    results = {sid: load_result(args.out, sid) if states[sid]["status"] == "graded" else None for sid in ids}
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    csv_path, summary = write_reports(args.out, stamp, rows, results)
    skipped = sum(1 for s in states.values() if s.get("skipped"))
    print(summary)
    print(f"\n{len(ids) - skipped} graded now, {skipped} skipped (already graded with this grader and config); "
          f"CSV: {os.path.relpath(csv_path, os.getcwd())}")
    for r in rows:
        if r["status"] != "graded":
            print(f"  {r['id']}: {r['status']}: {r['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
