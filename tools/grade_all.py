"""Grade a Gradescope "Export Submissions" folder, on a Dask cluster (a local one by default).

    python tools/grade_all.py SUBMISSIONS [--workers N | --scheduler tcp://HOST:8786 | --jobs N]
                              [--force] [--out build/grades] [--timeout S] [--wait-for-workers S]
                              [--grader-arg=ARG ...]

SUBMISSIONS holds one folder per submission and submission_metadata.yml.
Each submission is one Dask task that runs the usual isolated grader in a process of
its own (as root: under a slot of its own, so two submissions never share one).  By
default the tasks run on a LocalCluster of N worker processes, sized from this
machine's cores and memory (PER_SUBMISSION_MB each); --scheduler uses a running Dask
cluster instead (dask-jobqueue on Slurm or PBS, dask-kubernetes, or `dask scheduler`
and `dask worker` started by hand; see README), after checking that the scheduler and
its workers can run this grader on this export.  --jobs N grades in threads of this
process instead, without Dask.

Results go to OUT/results/<id>.json, written atomically as each submission finishes;
a submission already graded with the same grader code, config and files is skipped
unless --force, so an interrupted run resumes.  A task whose Dask worker dies is
retried once; if its second worker dies too, the row says "grader-failure" with the
reason.  The CSV's "flags" column carries each submission's instructor report (limits
hit, refused actions, suspicious files), empty when there was nothing.  Every run
writes a new OUT/grades-<time>.csv, OUT/summary-<time>.txt/.png and the cohort report
OUT/report-<time>.html (tools/report.py, with a similarity check of the export), so earlier runs
survive for tools/compare.py.  A submission that crashes, hangs or runs out of memory
never stops the batch; its row says what happened.
"""
import argparse
import concurrent.futures
import csv
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))           # grade_folder, also when imported by file name
from grader import VERSION  # noqa: E402
from grader.checks import CLASS_NAMES  # noqa: E402
from grader.results import REPORT_NAME  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.assignment import FILES  # noqa: E402
from grader.submission import find_files  # noqa: E402
from grade_folder import AUTOGRADER, command  # noqa: E402

STATUSES = ("graded", "timeout", "crashed", "no-files", "grader-failure")
# Memory one submission's grading may take, for sizing a local cluster: measured by make bench-batch, one
# Dask worker with its grader and the grader's worker peaked at 978 MB RSS here (the CUDA build of torch;
# Gradescope's CPU-only build fits its 768 MB container, README "Where it runs").
PER_SUBMISSION_MB = 1024
# what decides a grade besides the submission and the config: a change here regrades everything
GRADER_SOURCES = ("autograder/grader", "autograder/tests", "handout/utils.py")


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


def grader_hash():
    """A hash of the grader's code, tests and stored expected values (GRADER_SOURCES)."""
    digest = hashlib.sha256()
    for source in GRADER_SOURCES:
        path = os.path.join(ROOT, source)
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(d, f) for d, dirs, names in os.walk(path) for f in names
            if not f.endswith(".pyc") and "__pycache__" not in d)
        for name in files:
            digest.update(os.path.relpath(name, ROOT).encode())
            with open(name, "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()[:16]


def grader_mismatch(state_key):
    """None when this machine's checkout grades with the grader and config that ``state_key`` names; else what
    differs (a Dask worker started from another checkout, or with another NNAG_CONFIG)."""
    here = f"{grader_hash()}/{config_mod.load()['_hash']}"
    wanted = f"{state_key['grader_hash']}/{state_key['config_hash']}"
    if here != wanted:
        return (f"has another grader or config (grader/config hashes {here} at {ROOT} on {socket.gethostname()}; "
                f"this run's are {wanted})")
    return None


def _prctl():
    """libc's prctl, looked up here in the parent: the child between fork and exec only calls it (loading a
    library there could wait forever on a lock another thread of a Dask worker held at the fork)."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


PRCTL = _prctl()


def die_with_parent():
    """In the grader's child process before exec: SIGTERM when the process that started it dies (a Dask
    worker killed mid-task), so the grader stops its workers and removes its scratch folder."""
    if PRCTL is not None:
        PRCTL(1, 15)                           # PR_SET_PDEATHSIG, SIGTERM (Linux)


def atomic_write_text(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def grade_one(sid, folder, out, state_key, timeout, grader_args, force, env=None):
    """Grade one submission in a grader process of its own (a Dask task, or a thread with --jobs); returns its
    state: status, detail, wall seconds, skipped.  Every start is logged in OUT/results/<id>.attempts."""
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
    with open(os.path.join(out, "results", f"{sid}.attempts"), "a") as fh:
        fh.write(f"{datetime.datetime.now().isoformat(timespec='seconds')} pid {os.getpid()}\n")
    mismatch = grader_mismatch(state_key)
    if mismatch:
        status, detail = "grader-failure", f"the process that took it {mismatch}"
    elif not any(f.code in found for f in FILES):
        status, detail = "no-files", "none of the graded files was found"
        if os.path.exists(results):
            os.remove(results)
    else:
        proc = subprocess.Popen(command(folder, results, *grader_args), cwd=AUTOGRADER, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=die_with_parent if PRCTL is not None else None)
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
    """One line on stderr: a bar, done / running / failed, elapsed and the estimated time left."""

    def __init__(self, total, stream=sys.stderr):
        self.total, self.done, self.failed, self.running = total, 0, 0, 0
        self.start, self.lock, self.stream = time.time(), threading.Lock(), stream
        self.timed = []                 # wall seconds of the submissions graded now (not skipped)

    def update(self, running=None, finished=None):
        """``finished``: a state from grade_one (or None when only the running count changed)."""
        with self.lock:
            if running is not None:
                self.running = running
            if finished is not None:
                self.done += 1
                self.failed += finished["status"] in ("crashed", "timeout", "grader-failure")
                if not finished.get("skipped"):
                    self.timed.append(finished["wall"])
            self.draw()

    def draw(self):
        elapsed = time.time() - self.start
        left = self.total - self.done
        if self.timed and left:
            parallel = max(1, self.running)
            eta = f"{sum(self.timed) / len(self.timed) * left / parallel:5.0f} s"
        else:
            eta = "    ? " if left else "    0 s"
        width = 30
        bar = "#" * (width * self.done // max(1, self.total))
        self.stream.write(f"\r[{bar:<{width}}] {self.done}/{self.total} done, {self.running} running, "
                          f"{self.failed} failed  elapsed {elapsed:4.0f} s  left ~{eta} ")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def local_workers(cores=None, available_mb=None):
    """Dask workers for this machine: one per core, as many as 80 % of the available memory holds at
    PER_SUBMISSION_MB each, at least one."""
    cores = cores or os.cpu_count() or 1
    if available_mb is None:
        import psutil
        available_mb = psutil.virtual_memory().available >> 20
    return max(1, min(cores, int(available_mb * 0.8) // PER_SUBMISSION_MB))


def failure_state(exc):
    """The state of a submission whose grading could not finish for a reason outside the grader."""
    from distributed import KilledWorker
    if isinstance(exc, KilledWorker):
        detail = (f"its Dask worker died {exc.allowed_failures + 1} times (the scheduler retries a task "
                  f"{exc.allowed_failures} time(s): distributed.scheduler.allowed-failures); see the workers' logs")
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return {"status": "grader-failure", "detail": detail, "wall": 0.0, "skipped": False}


class ClusterUnreachable(RuntimeError):
    pass


def run_threads(tasks, jobs, progress):
    """--jobs N: every task in a thread of this process, N at a time."""
    states = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(grade_one, *task): task[0] for task in tasks}
        progress.update(running=min(jobs, len(tasks)))
        for future in concurrent.futures.as_completed(futures):
            sid = futures[future]
            try:
                states[sid] = future.result()
            except Exception as exc:  # noqa: BLE001 - one submission never stops the batch
                states[sid] = {"status": "crashed", "detail": f"{type(exc).__name__}: {exc}", "wall": 0.0,
                               "skipped": False}
            progress.update(running=min(jobs, len(tasks) - len(states)), finished=states[sid])
    return states


def connect(scheduler, wait_for_workers, folders, state_key):
    """A client of the running Dask cluster at ``scheduler``, once at least one worker has joined it (up to
    ``wait_for_workers`` seconds) and check_cluster found nothing wrong.  Warns when the scheduler retries a
    task whose worker died other than once."""
    from distributed import Client
    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise ClusterUnreachable(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: "
                                 f"{exc}); start it, or give --scheduler the address `dask scheduler` "
                                 "printed") from None
    if not client.scheduler_info()["workers"]:
        print(f"grade_all: no worker has joined the scheduler at {scheduler} yet; waiting up to "
              f"{wait_for_workers:g} s", file=sys.stderr)
        try:
            client.wait_for_workers(1, timeout=wait_for_workers)
        except TimeoutError:
            client.close()
            raise ClusterUnreachable(f"no Dask worker joined the scheduler at {scheduler} in {wait_for_workers:g} s; "
                                     f"start them with `PYTHONPATH=tools:autograder dask worker {scheduler} "
                                     "--nthreads 1` (README, \"Grading a whole course\"), or give "
                                     "--wait-for-workers more time") from None
    check_cluster(client, scheduler, folders, state_key)
    retries = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    if retries != 1:
        print(f"grade_all: WARNING: the scheduler at {scheduler} retries a task whose worker died {retries} "
              "time(s), not once: a submission that kills its worker is tried that often. Start the scheduler "
              "with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1", file=sys.stderr)
    return client


def check_cluster(client, scheduler, folders, state_key):
    """Refuse a cluster that would grade wrongly or not at all: the scheduler and every worker that has joined
    must import grade_all (which Dask needs to unpickle the tasks; a worker that cannot leaves the cluster and
    the run waits for ever) and run this grader and config, and every worker must see ``folders`` (the export
    and the output folder).  ``state_key``: this run's grader and config hashes."""
    def probe(folders):                   # defined here, so that Dask sends its code rather than its name
        try:
            import grade_all as remote
            mismatch = remote.grader_mismatch(state_key)
        except Exception as exc:  # noqa: BLE001 - reported, whatever it is
            return f"cannot import grade_all ({type(exc).__name__}: {exc})"
        unseen = [folder for folder in folders if not os.path.isdir(folder)]
        return mismatch or (f"cannot see {' or '.join(unseen)}" if unseen else None)

    problems = {"the scheduler": client.run_on_scheduler(probe, [])}
    problems.update((f"the worker at {address}", found) for address, found in client.run(probe, folders).items())
    problems = [f"{who} {what}" for who, what in problems.items() if what]
    if problems:
        client.close()
        raise ClusterUnreachable(f"the Dask cluster at {scheduler} cannot grade this export: " + "; ".join(problems)
                                 + ". Start the scheduler and the workers from this repository's root (a shared "
                                 "file system on other machines) with PYTHONPATH=tools:autograder and the same "
                                 "export path (README, \"Grading a whole course\")")


def run_dask(tasks, workers, scheduler, progress, wait_for_workers=300, folders=(), state_key=None):
    """Every task on a Dask cluster: the one at ``scheduler`` (checked by check_cluster with ``folders`` and
    ``state_key``), else a LocalCluster of ``workers`` processes.  A task whose worker dies is retried once
    (distributed.scheduler.allowed-failures = 1)."""
    import dask
    from distributed import Client, LocalCluster, wait
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.worker.memory.terminate": False}):
        if scheduler:
            cluster, client = None, connect(scheduler, wait_for_workers, folders, state_key)
        else:
            # one thread per worker: one submission at a time; no memory limit of Dask's own (the grader and
            # its workers are separate processes, limited by the grader)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                                   dashboard_address="127.0.0.1:0", silence_logs=50)
            client = Client(cluster)
        try:
            print(f"grade_all: Dask dashboard at {client.dashboard_link} "
                  f"({len(client.scheduler_info()['workers'])} workers)", file=sys.stderr)
            import grade_all              # the task by its module's name, so that workers import it
            futures = {client.submit(grade_all.grade_one, *task, key=f"grade-{task[0]}", pure=False): task[0]
                       for task in tasks}
            states, pending, alone_since = {}, set(futures), None
            while pending:
                try:
                    done, pending = wait(pending, timeout=2, return_when="FIRST_COMPLETED")
                except TimeoutError:             # nothing finished in 2 s: only the running count is redrawn
                    done = set()
                for future in done:
                    sid = futures[future]
                    try:
                        states[sid] = future.result()
                    except Exception as exc:  # noqa: BLE001 - one submission never stops the batch
                        states[sid] = failure_state(exc)
                    progress.update(finished=states[sid])
                # a cluster whose workers have all gone would keep the rest waiting for ever
                alone_since = None if client.scheduler_info()["workers"] else alone_since or time.time()
                if pending and alone_since and time.time() - alone_since > wait_for_workers:
                    client.cancel(list(pending))
                    for future in pending:
                        states[futures[future]] = {
                            "status": "grader-failure", "wall": 0.0, "skipped": False,
                            "detail": f"no Dask worker was left in the cluster for {wait_for_workers:g} s "
                                      "(--wait-for-workers); see the workers' logs"}
                        progress.update(finished=states[futures[future]])
                    break
                processing = sum(len(v) for v in client.processing().values())
                progress.update(running=processing)
            return states
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def load_result(out, sid):
    path = os.path.join(out, "results", f"{sid}.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def flags_of(result):
    """The instructor report's problem lines (limits hit, refused actions, tests lost to the clock), '' when
    there is nothing; its time section is left out."""
    for t in (result or {}).get("tests", []):
        if t["name"] == REPORT_NAME and t["status"] == "failed":
            problems = (t.get("extra_data") or {}).get("problems")
            lines = problems if isinstance(problems, list) else t["output"].split("\n\n")[0].splitlines()
            return " | ".join(str(line) for line in lines)
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


def write_reports(out, stamp, rows, results, submissions=None, similarity_threshold=None):
    """grades-<stamp>.csv, summary-<stamp>.txt, histogram-<stamp>.png and the cohort report report-<stamp>.html
    (tools/report.py; ``submissions``, the export, for its similarity check) in ``out``; returns the CSV's path
    and the summary."""
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
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    summary = [f"{len(rows)} submissions: " + ", ".join(f"{s} {n}" for s, n in counts.items()
                                                          if n or s != "grader-failure")]
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
    import report                     # the cohort report; a problem there never loses the grades
    try:
        kwargs = {} if similarity_threshold is None else {"threshold": similarity_threshold}
        summary.append(f"\ncohort report: {report.write_report(csv_path, submissions=submissions, **kwargs)}")
    except (report.ReportError, OSError, ValueError) as exc:
        summary.append(f"\ncohort report: not written ({exc})")
    return csv_path, "\n".join(summary)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=0,
                       help="workers of the local Dask cluster (default: from the cores and the memory)")
    where.add_argument("--scheduler", default=os.environ.get("NNAG_DASK_SCHEDULER"),
                       help="address of a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--jobs", type=int, default=0, help="grade in N threads of this process, without Dask")
    p.add_argument("--wait-for-workers", type=float, default=300, metavar="S",
                   help="seconds to wait for a first worker to join a --scheduler cluster, and for a worker "
                        "when all have left during the run (default 300)")
    p.add_argument("--force", action="store_true", help="regrade submissions that were already graded")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "grades"))
    p.add_argument("--timeout", type=float, default=1800, help="seconds for one submission's whole grading")
    p.add_argument("--grader-arg", action="append", default=[], help="extra argument for grader.run")
    p.add_argument("--similarity-threshold", type=float, default=None, metavar="X",
                   help="the cohort report lists pairs of submissions at least this similar (default: "
                        "tools/similarity.py's THRESHOLD)")
    p.add_argument("--no-similarity", action="store_true",
                   help="leave the similarity check out of the cohort report (about 7 minutes for 600 submissions)")
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
    state_key = {"grader_version": VERSION, "grader_hash": grader_hash(), "config_hash": config["_hash"],
                 "grader_args": args.grader_arg}
    if args.jobs:
        parallel, where = args.jobs, f"{args.jobs} threads of this process"
    elif args.scheduler:
        parallel, where = None, f"the Dask cluster at {args.scheduler}"
    else:
        parallel = args.workers or local_workers()
        where = f"a local Dask cluster of {parallel} workers"
    # parallel graders share the cores: give each grader's worker its share of threads
    env = dict(os.environ, NNAG_WORKER_THREADS=str(max(1, (os.cpu_count() or 1) // parallel))) \
        if parallel and parallel > 1 else None
    print(f"grade_all: {len(ids)} submissions on {where}", file=sys.stderr)
    tasks = [(sid, os.path.abspath(os.path.join(args.submissions, sid)), os.path.abspath(args.out), state_key,
              args.timeout, args.grader_arg, args.force, env) for sid in ids]
    progress = Progress(len(ids))
    try:
        states = run_threads(tasks, args.jobs, progress) if args.jobs else \
            run_dask(tasks, parallel, args.scheduler, progress, args.wait_for_workers,
                     [os.path.abspath(args.submissions), os.path.abspath(args.out)], state_key)
    except ClusterUnreachable as exc:
        print(f"\ngrade_all: {exc}", file=sys.stderr)
        return 2
    rows = [dict(id=sid, status=states[sid]["status"], detail=states[sid].get("detail", ""),
                 wall=states[sid]["wall"], names=metadata.get(sid, {}).get("names", []),
                 emails=metadata.get(sid, {}).get("emails", [])) for sid in ids]
    results = {sid: load_result(args.out, sid) if states[sid]["status"] == "graded" else None for sid in ids}
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    csv_path, summary = write_reports(args.out, stamp, rows, results,
                                      None if args.no_similarity else os.path.abspath(args.submissions),
                                      args.similarity_threshold)
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
