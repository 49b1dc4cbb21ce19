"""make grade-all on a small Gradescope export; CSV, summary, resume, compare."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION

METADATA = """\
submission_1:
  :submitters:
  - :name: Ada Lovelace
    :email: ada@example.edu
    :sid: '1'
  :created_at: 2026-11-01 10:00:00
submission_2:
  :submitters:
  - :name: Alan Turing
    :email: alan@example.edu
  - :name: Grace Hopper
    :email: grace@example.edu
submission_3:
  :submitters:
  - :name: C Crash
    :email: c@example.edu
submission_4:
  :submitters:
  - :name: N None
    :email: n@example.edu
submission_5:
  :submitters:
  - :name: H Hang
    :email: h@example.edu
"""


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")
    except OSError:
        return []


class WorkerWatch:
    """The worker processes started by the graders of one export, seen in /proc every 0.1 s while grade-all
    runs (a worker whose parent is a grader of a submission of that export).  Other tests grade beside this
    one under make test: only these workers are this run's."""

    def __init__(self, export):
        self.export, self.seen, self.done = str(export), set(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while not self.done.wait(0.1):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                if any(a.endswith("runtime/worker.py") for a in cmdline(pid)):
                    try:
                        with open(f"/proc/{pid}/stat") as fh:
                            ppid = fh.read().rsplit(")", 1)[1].split()[1]
                    except (OSError, IndexError):
                        continue
                    if any(a.startswith(self.export) for a in cmdline(ppid)):
                        self.seen.add(int(pid))

    def stop(self):
        self.done.set()
        self.thread.join()
        return sorted(pid for pid in self.seen if any(a.endswith("runtime/worker.py") for a in cmdline(pid)))


def grade_all(export, out, *extra, where=("--jobs", "2")):
    cmd = [PYTHON, os.path.join(ROOT, "tools", "grade_all.py"), str(export), "--out", str(out), *where,
           "--timeout", "25", "--grader-arg=--files=numpy_ann", "--grader-arg=--tests=public", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def newest_csv(out):
    name = sorted(f for f in os.listdir(out) if f.endswith(".csv"))[-1]
    with open(out / name, newline="") as fh:
        return out / name, {r["submission_id"]: r for r in csv.DictReader(fh)}


@pytest.mark.duration(52)
def test_grade_all_export_resume_and_compare(tmp_path):
    export = tmp_path / "export"
    for i in range(1, 6):
        (export / f"submission_{i}").mkdir(parents=True)
    shutil.copy(os.path.join(SOLUTION, "numpy_ann.py"), export / "submission_1" / "numpy_ann.py")
    shutil.copy(os.path.join(HANDOUT, "numpy_ann.py"), export / "submission_2" / "numpy_ann.py")
    (export / "submission_3" / "numpy_ann.py").write_text("import os\nos._exit(3)\n")
    (export / "submission_4" / "README.txt").write_text("forgot the files")
    (export / "submission_5" / "numpy_ann.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")
    (export / "submission_metadata.yml").write_text(METADATA)
    os.chmod(tmp_path, 0o755)
    out = tmp_path / "grades"
    watch = WorkerWatch(export)

    proc = grade_all(export, out)
    first_csv, rows = newest_csv(out)
    status = {sid: r["status"] for sid, r in rows.items()}
    assert status == {"submission_1": "graded", "submission_2": "graded", "submission_3": "graded",
                      "submission_4": "no-files", "submission_5": "timeout"}
    left = watch.stop()
    assert watch.seen and left == [], left          # workers ran; the hung submission's was killed
    reference = json.loads((out / "results" / "submission_1.json").read_text())
    full = sum(t["max_score"] for t in reference["tests"])
    assert full > 0 and float(rows["submission_1"]["total"]) == full
    assert float(rows["submission_2"]["total"]) == 0 and float(rows["submission_3"]["total"]) == 0
    assert rows["submission_2"]["names"] == "Alan Turing; Grace Hopper"
    assert rows["submission_1"]["emails"] == "ada@example.edu"
    test_columns = [c for c in rows["submission_1"] if c.startswith("1.")]
    graded_tests = [t for t in reference["tests"] if not t["name"].startswith("Instructor report")]
    assert len(test_columns) == len(graded_tests) == len(reference["tests"]) - 1
    assert rows["submission_1"]["flags"] == "" and "exited with code 3" in rows["submission_3"]["flags"]
    assert sum(float(rows["submission_1"][c]) for c in test_columns) == full
    assert rows["submission_1"]["grader_version"] and float(rows["submission_1"]["wall_time_s"]) > 0
    summary = next(f for f in os.listdir(out) if f.startswith("summary-"))
    text = (out / summary).read_text()
    assert "graded 3, timeout 1, crashed 0, no-files 1" in text and "slowest submissions" in text
    assert any(f.startswith("histogram-") and f.endswith(".png") for f in os.listdir(out))
    assert "submission_5: timeout" in proc.stdout
    page = (out / first_csv.name.replace("grades-", "report-").replace(".csv", ".html")).read_text()
    assert "Needs a human (3)" in page and "exited with code 3" in page    # 3 crashed at import, 4 no files, 5 hung
    assert "http:" not in page and "https:" not in page and ("src='data:" in page or 'src="data:' in page)

    # a fixed submission: only it (and the timed-out one) is graded again
    shutil.copy(os.path.join(SOLUTION, "numpy_ann.py"), export / "submission_2" / "numpy_ann.py")
    proc = grade_all(export, out)
    counts = [line for line in proc.stdout.splitlines() if "graded now" in line]
    assert counts and counts[0].startswith("2 graded now, 3 skipped"), counts
    second_csv, rows = newest_csv(out)
    assert second_csv != first_csv and first_csv.exists()
    assert float(rows["submission_2"]["total"]) == full

    compare = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "compare.py"), str(first_csv), str(second_csv)],
                             capture_output=True, text=True)
    assert compare.returncode == 0
    assert "1 submission(s) changed" in compare.stdout
    assert f"submission_2: total 0 -> {full:g} +{full:g}" in compare.stdout


def small_export(tmp_path, sources):
    """An export of one submission per numpy_ann.py source (text, or a path to copy)."""
    export = tmp_path / "export"
    for i, source in enumerate(sources, 1):
        folder = export / f"submission_{i}"
        folder.mkdir(parents=True)
        if os.path.isfile(source):
            shutil.copy(source, folder / "numpy_ann.py")
        else:
            (folder / "numpy_ann.py").write_text(source)
    (export / "submission_metadata.yml").write_text(METADATA)
    os.chmod(tmp_path, 0o755)
    return export


def without_run_times(out):
    """The newest CSV with its wall-time cells blanked, and the summary without the slowest-submissions times:
    the only parts that measure the run rather than the results."""
    path, _ = newest_csv(out)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    wall = rows[0].index("wall_time_s")
    table = [r[:wall] + [""] + r[wall + 1:] for r in rows]
    text = (out / path.name.replace("grades-", "summary-").replace(".csv", ".txt")).read_text()
    summary = [line for line in text.splitlines() if not line.startswith("  ") or " s  submission_" not in line]
    return table, summary


def test_a_local_dask_cluster_grades_the_same_as_one_process(tmp_path):
    """Two Dask workers and one grading thread give the same CSV and summary (run times aside)."""
    export = small_export(tmp_path, [os.path.join(SOLUTION, "numpy_ann.py"), os.path.join(HANDOUT, "numpy_ann.py"),
                                     "import os\nos._exit(3)\n"])
    grade_all(export, tmp_path / "one", where=("--jobs", "1"))
    proc = grade_all(export, tmp_path / "dask", where=("--workers", "2"))
    assert "Dask dashboard at http://127.0.0.1:" in proc.stderr and "(2 workers)" in proc.stderr
    assert "3 done, 0 running, 0 failed" in proc.stderr
    one, dask = without_run_times(tmp_path / "one"), without_run_times(tmp_path / "dask")
    assert dask == one
    assert [r[-4] for r in one[0][1:]] == ["graded"] * 3 and float(one[0][1][one[0][0].index("total")]) > 0


DASK_CLI = os.path.join(os.path.dirname(PYTHON), "dask")


def cluster_env(failures="1", path=("tools", "autograder")):
    """The environment of README's `dask scheduler` and `dask worker` commands."""
    return dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=failures,
                PYTHONPATH=os.pathsep.join(os.path.join(ROOT, p) for p in path))


def start_scheduler(tmp_path, failures="1"):
    """`dask scheduler` on a free local port; returns its address and process."""
    info = tmp_path / "scheduler.json"
    proc = subprocess.Popen([DASK_CLI, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                             "127.0.0.1:0", "--scheduler-file", str(info)], cwd=ROOT, env=cluster_env(failures),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "scheduler.log", "w"))
    deadline = time.time() + 60
    while not (info.exists() and info.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return json.loads(info.read_text())["address"], proc


def start_workers(tmp_path, address, *args, path=("tools", "autograder"), env=None):
    """`dask worker ADDRESS --nthreads 1 ...` as README says (in a session of its own, to be killed whole)."""
    return subprocess.Popen([DASK_CLI, "worker", address, "--nthreads", "1", *args], cwd=ROOT,
                            env=dict(cluster_env(path=path), **(env or {})), stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "workers.log", "a"), start_new_session=True)


def stop(procs):
    """End the processes, the last first (None: one never started); a worker's whole session."""
    for proc in reversed([p for p in procs if p is not None]):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM) if os.getpgid(proc.pid) == proc.pid else proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_cluster_started_by_hand_grades_the_same_as_one_process(tmp_path):
    """`dask scheduler` and `dask worker --nthreads 1 --nworkers 2` started as README says, grade-all with
    --scheduler: the same CSV and summary as one grading thread (run times aside)."""
    export = small_export(tmp_path, [os.path.join(SOLUTION, "numpy_ann.py"), os.path.join(HANDOUT, "numpy_ann.py"),
                                     "import os\nos._exit(3)\n"])
    address, scheduler = start_scheduler(tmp_path)
    procs = [scheduler, start_workers(tmp_path, address, "--nworkers", "2")]
    try:
        proc = grade_all(export, tmp_path / "hand", where=("--scheduler", address))
    finally:
        stop(procs)
    grade_all(export, tmp_path / "one", where=("--jobs", "1"))
    assert f"on the Dask cluster at {address}" in proc.stderr and "WARNING" not in proc.stderr
    assert "3 done, 0 running, 0 failed" in proc.stderr
    assert without_run_times(tmp_path / "hand") == without_run_times(tmp_path / "one")


def test_a_cluster_that_cannot_grade_is_named(tmp_path):
    """Against a scheduler started by hand: no worker joins in time, or one cannot import grade_all: exit 2,
    naming what to start and how.  A scheduler that retries a task other than once: a warning naming the
    setting.  The only worker killed mid-task and none coming back: the row says grader-failure, no hang."""
    with open(os.path.join(SOLUTION, "numpy_ann.py")) as fh:
        slow = fh.read() + "\nimport time as _t\n_t.sleep(30)   # its worker is killed before this ends\n"
    export = small_export(tmp_path, [os.path.join(HANDOUT, "numpy_ann.py"), slow])
    address, scheduler = start_scheduler(tmp_path, failures="3")
    procs, run = [scheduler], None
    cmd = [PYTHON, os.path.join(ROOT, "tools", "grade_all.py"), str(export), "--out", str(tmp_path / "g"),
           "--scheduler", address, "--wait-for-workers", "3", "--grader-arg=--files=numpy_ann",
           "--grader-arg=--tests=public", "--grader-arg=-k=relu"]
    try:
        lonely = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert lonely.returncode == 2 and "Traceback" not in lonely.stderr
        assert f"no Dask worker joined the scheduler at {address} in 3 s" in lonely.stderr
        assert f"dask worker {address} --nthreads 1" in lonely.stderr

        procs.append(start_workers(tmp_path, address, path=("autograder",)))     # tools/ not on its path
        lost = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert lost.returncode == 2 and "Traceback" not in lost.stderr
        assert re.search(r"the worker at tcp://\S+ cannot import grade_all \(ModuleNotFoundError", lost.stderr)
        assert "PYTHONPATH=tools:autograder" in lost.stderr
        stop(procs[1:])
        del procs[1:]

        procs.append(start_workers(tmp_path, address))
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_grader(str(export / "submission_2") + " ")
        time.sleep(1)                                   # mid-task: the grader has started its worker
        stop(procs[1:])                                 # the only worker (nanny and worker) is gone
        stdout, stderr = run.communicate(timeout=120)
    finally:
        stop([*procs, run])
    assert run.returncode == 0, stderr[-2000:]
    assert "retries a task whose worker died 3 time(s), not once" in stderr
    assert "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1" in stderr
    _, rows = newest_csv(tmp_path / "g")
    assert rows["submission_1"]["status"] == "graded"
    assert rows["submission_2"]["status"] == "grader-failure"
    assert "submission_2: grader-failure: no Dask worker was left in the cluster for 3 s" in stdout


def test_a_worker_that_joins_late_with_another_config_grades_nothing(tmp_path):
    """The cluster passes the check; then its only worker dies mid-task and one started with another config
    (NNAG_CONFIG) takes over: every task it takes ends as grader-failure, naming the difference, never as a
    grade from another config under this run's key."""
    from distributed import Client
    with open(os.path.join(SOLUTION, "numpy_ann.py")) as fh:
        slow = fh.read() + "\nimport time as _t\n_t.sleep(30)   # its worker is killed before this ends\n"
    export = small_export(tmp_path, [slow, slow])
    other = tmp_path / "other.toml"
    other.write_text(open(os.path.join(ROOT, "autograder", "config.toml")).read() + "\n# another config\n")
    os.chmod(other, 0o644)
    address, scheduler = start_scheduler(tmp_path)
    procs, run = [scheduler, start_workers(tmp_path, address)], None
    try:
        run = subprocess.Popen([PYTHON, os.path.join(ROOT, "tools", "grade_all.py"), str(export), "--out",
                                str(tmp_path / "g"), "--scheduler", address, "--grader-arg=--files=numpy_ann",
                                "--grader-arg=--tests=public", "--grader-arg=-k=relu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_grader(str(export) + "/")
        procs.append(start_workers(tmp_path, address, env={"NNAG_CONFIG": str(other)}))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        stop(procs[1:2])                                # the checked worker is gone; the late one takes over
        stdout, stderr = run.communicate(timeout=120)
    finally:
        stop([*procs, run])
    assert run.returncode == 0, stderr[-2000:]
    _, rows = newest_csv(tmp_path / "g")
    assert [rows[s]["status"] for s in ("submission_1", "submission_2")] == ["grader-failure"] * 2
    assert stdout.count("grader-failure: the process that took it has another grader or config") == 2
    attempts = (tmp_path / "g" / "results" / "submission_1.attempts").read_text().splitlines()
    assert len(attempts) == 2                       # begun by the checked worker, refused by the late one


def wait_for_grader(marker, seconds=120):
    """Until a grader whose command line contains ``marker`` runs."""
    deadline = time.time() + seconds
    while not grader_pids(marker) and time.time() < deadline:
        time.sleep(0.1)


def grader_pids(marker):
    """{pid: parent pid} of the grader processes whose command line contains ``marker`` (read from /proc:
    ps cuts long command lines when it has no terminal)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "grader.run" in args and marker in args:
            found[int(pid)] = parent
    return found


@pytest.mark.parametrize("kills", [1, 2])
def test_a_killed_dask_worker_loses_nothing(tmp_path, kills):
    """The Dask worker grading submission_2 is killed (SIGKILL) mid-task: once, the task is retried and graded;
    twice, the row says grader-failure with the reason.  The other submissions are graded either way, and no
    grader outlives its worker."""
    with open(os.path.join(SOLUTION, "numpy_ann.py")) as fh:
        slow = fh.read() + "\nimport time as _t\n_t.sleep(6)   # a window to kill its worker in\n"
    export = small_export(tmp_path, [slow] * 3)
    out = tmp_path / "grades"
    cmd = [PYTHON, os.path.join(ROOT, "tools", "grade_all.py"), str(export), "--out", str(out), "--workers", "2",
           "--timeout", "120", "--grader-arg=--files=numpy_ann", "--grader-arg=--tests=public"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = str(export / "submission_2")
    killed = set()
    deadline = time.time() + 300
    while len(killed) < kills and proc.poll() is None and time.time() < deadline:
        for pid, parent in grader_pids(target + " ").items():
            if pid not in killed:
                time.sleep(1)                        # mid-task: the grader has started its worker
                os.kill(parent, signal.SIGKILL)      # the Dask worker process that runs the task
                killed.add(pid)
                break
        time.sleep(0.1)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert len(killed) == kills
    _, rows = newest_csv(out)
    attempts = (out / "results" / "submission_2.attempts").read_text().splitlines()
    assert len(attempts) == 2                        # the first try and the one retry
    for sid in ("submission_1", "submission_3"):
        assert rows[sid]["status"] == "graded" and float(rows[sid]["total"]) > 0
    if kills == 1:
        assert rows["submission_2"]["status"] == "graded"
        assert rows["submission_2"]["total"] == rows["submission_1"]["total"]
    else:
        assert rows["submission_2"]["status"] == "grader-failure" and rows["submission_2"]["total"] == ""
        assert "submission_2: grader-failure: its Dask worker died 2 times (the scheduler retries a task " \
               "1 time(s)" in stdout
    time.sleep(2)
    assert grader_pids(str(export)) == {}            # the killed workers' graders stopped too


def test_the_local_cluster_is_sized_from_cores_and_memory():
    """One worker per core, as many as 80 % of the available memory holds at PER_SUBMISSION_MB, at least one."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("grade_all_mod", os.path.join(ROOT, "tools", "grade_all.py"))
    grade_all_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade_all_mod)
    per = grade_all_mod.PER_SUBMISSION_MB
    assert grade_all_mod.local_workers(cores=2, available_mb=24000) == 2
    assert grade_all_mod.local_workers(cores=16, available_mb=4 * per) == 3          # 80 % of 4 submissions' memory
    assert grade_all_mod.local_workers(cores=16, available_mb=per // 2) == 1
