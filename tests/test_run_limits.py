"""The run-wide deadline, results.json after each file, cleanup that cannot cost the results,
and replies refused before the grader converts them."""
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import textwrap
import sys
import time
import tracemalloc

import numpy as np
import pytest

from conftest import PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import checks, protocol, results as results_mod  # noqa: E402
from grader.submission import HELD_FOLDERS, remove_tree, tree_usage  # noqa: E402

# every method of PyTorchANN hangs (bounded, so that nothing outlives the test by long)
HANGING_ANN = """
import time


class PyTorchANN:
    def __init__(self, *args, **kwargs):
        time.sleep(120)

    def __getattr__(self, name):
        time.sleep(120)
"""


def submission(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(os.path.join(SOLUTION, "numpy_ann.py"), sub / "numpy_ann.py")
    (sub / "pytorch_ann.py").write_text(HANGING_ANN)
    return sub


def command(sub, out, *settings):
    cmd = [PYTHON, "-m", "grader.run", "--submission", str(sub), "--results", str(out), "--quiet",
           "--files", "numpy_ann,pytorch_ann", "--skip-training", "numpy_ann,pytorch_ann"]
    for s in settings:
        cmd += ["--set", s]
    return cmd


def by_file(result):
    out = {}
    for t in result["tests"]:
        got, of, msgs = out.get(t["tags"][0], (0.0, 0.0, []))
        out[t["tags"][0]] = (got + t["score"], of + t["max_score"], msgs + [t["output"]])
    return out


@pytest.mark.duration(40)
def test_total_time_runs_out_on_a_hanging_file(tmp_path):
    """A tiny total: the finished file keeps its scores; the hanging one's requests are cut to the time left,
    then refused, each saying the total ran out; nothing runs past the total."""
    out = tmp_path / "results.json"
    start = time.monotonic()
    proc = subprocess.run(command(submission(tmp_path), out, "time_limits.total=40", "time_limits.import=10",
                                  "time_limits.call=10", "time_limits.timeouts_per_file=100"),
                          cwd=os.path.join(ROOT, "autograder"), capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert results_mod.validate(result) == []
    files = by_file(result)
    assert files["numpy_ann"][0] == files["numpy_ann"][1] > 0
    assert files["pytorch_ann"][0] == 0
    messages = files["pytorch_ann"][2]
    cut = [m for m in messages if "stopped after" in m and "the autograder's total time (40 s" in m]
    refused = [m for m in messages if m.startswith("not run: the autograder's total time (40 s")]
    assert len(cut) == 1 and refused and len(refused) >= len(messages) - 5, messages
    assert result["extra_data"]["out_of_time"] is True and result["extra_data"]["partial"] is False
    assert "ran out of time" in result["output"]
    assert elapsed < 40 + 25, elapsed                  # no request was started past the total


# numpy_ann hangs in every method: without a share of its own per file, it would spend the
# reference pytorch_ann's time (timeouts_per_file is high, so only the shares stop it)
HANGING_NUMPY = HANGING_ANN.replace("PyTorchANN", "NumpyANN")


@pytest.mark.duration(38)
def test_a_hanging_file_spends_only_its_own_share(tmp_path):
    """numpy_ann hangs (first in the run); pytorch_ann, the reference, still gets its share and full marks,
    and the instructor report names the file that lost tests to the clock and the time it used."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "numpy_ann.py").write_text(HANGING_NUMPY)
    shutil.copy(os.path.join(SOLUTION, "pytorch_ann.py"), sub / "pytorch_ann.py")
    shutil.copy(os.path.join(SOLUTION, "pytorch_ann_train_val_metrics.png"), sub)
    out = tmp_path / "results.json"
    proc = subprocess.run(command(sub, out, "time_limits.total=70", "time_limits.file_minimum=30",
                                  "time_shares.numpy_ann=1", "time_shares.pytorch_ann=1",
                                  "time_limits.call=8", "time_limits.timeouts_per_file=100",
                                  "time_limits.scale_with_cpu=false"),
                          cwd=os.path.join(ROOT, "autograder"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    files = by_file(result)
    assert files["pytorch_ann"][0] == files["pytorch_ann"][1] > 0, files["pytorch_ann"][2]
    assert files["numpy_ann"][0] == 0
    assert any("the time for numpy_ann.py ran out" in m for m in files["numpy_ann"][2])
    time_used = result["extra_data"]["time_per_file"]
    assert time_used["numpy_ann"]["share_s"] == 35 and 30 < time_used["numpy_ann"]["used_s"] < 38, time_used
    assert time_used["numpy_ann"]["lost_to_clock"] and not time_used["pytorch_ann"]["lost_to_clock"]
    report = [t for t in result["tests"] if t["name"] == results_mod.REPORT_NAME][0]
    assert report["status"] == "failed"
    assert "clock: numpy_ann lost" in report["output"] and "numpy_ann: used 3" in report["output"], report["output"]


# numpy_ann takes long to import and its objects never finish their finaliser: the clean-up after
# each test times out, and each test would import the file again
SLOW_IMPORT_STALLED_CLEANUP = """
import time

time.sleep(3)

{reference}

NumpyANN.__del__ = lambda self: time.sleep(600)
"""


def test_a_clean_up_that_times_out_counts_against_its_file(tmp_path):
    """Two clean-ups that time out stop the file, as two timed-out tests do; the report says why."""
    sub = tmp_path / "sub"
    sub.mkdir()
    with open(os.path.join(SOLUTION, "numpy_ann.py")) as fh:
        (sub / "numpy_ann.py").write_text(SLOW_IMPORT_STALLED_CLEANUP.format(reference=fh.read()))
    out = tmp_path / "results.json"
    proc = subprocess.run(command(sub, out, "time_limits.call=3", "time_limits.import=30",
                                  "time_limits.scale_with_cpu=false") + ["--files", "numpy_ann", "--tests", "public"],
                          cwd=os.path.join(ROOT, "autograder"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    messages = by_file(result)["numpy_ann"][2]
    stopped = [m for m in messages if "numpy_ann.py ran out of time 2 times" in m]
    assert stopped and len(stopped) >= len(messages) - 3, messages
    report = [t for t in result["tests"] if t["name"] == results_mod.REPORT_NAME][0]
    assert "clean-up after a test timed out" in report["output"], report["output"]


def test_results_are_written_after_each_file(tmp_path):
    """Killed from outside while the second file hangs: results.json keeps the first file's scores."""
    out = tmp_path / "results.json"
    proc = subprocess.Popen(command(submission(tmp_path), out, "time_limits.call=100"),
                            cwd=os.path.join(ROOT, "autograder"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        result = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                result = json.loads(out.read_text())
            except (OSError, ValueError):
                result = None
            if result and result["tests"]:
                break
            time.sleep(0.5)
        time.sleep(2)
        os.kill(proc.pid, signal.SIGKILL)                # Gradescope's kill at its timeout
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(out.read_text())
    assert results_mod.validate(result) == []
    assert result["extra_data"]["partial"] is True
    files = by_file(result)
    assert set(files) == {"numpy_ann", "general"}
    assert files["numpy_ann"][0] == files["numpy_ann"][1] > 20
    assert "Grading did not finish" in result["output"] and "pytorch_ann.py" in result["output"]
    uids = result["extra_data"].get("isolation", {}).get("worker_uids")
    if isinstance(uids, dict):                           # the killed grader's workers: not ours to leave
        from grader.reaper import kill_user
        import grp
        for uid in uids.values():
            kill_user(uid, grp.getgrnam("nogroup").gr_gid)


def test_deep_tree_and_taken_permissions_are_removed(tmp_path):
    top = tmp_path / "scratch"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(3000):                                # deeper than recursion and PATH_MAX allow
        os.mkdir("d" * 30, dir_fd=fd)
        child = os.open("d" * 30, os.O_RDONLY, dir_fd=fd)
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o000, dir_fd=child))
        os.close(fd)
        fd = child
    os.symlink(str(tmp_path / "keep"), "link", dir_fd=fd)
    os.fchmod(fd, 0o000)
    os.close(fd)
    (tmp_path / "keep").write_text("outside, reached through a link")
    with pytest.raises(RecursionError):
        shutil.rmtree(top, ignore_errors=True)          # what the grader used before
    assert remove_tree(str(top)) == []
    assert not top.exists() and (tmp_path / "keep").read_text().startswith("outside")


def test_a_tree_deeper_than_the_open_file_limit_is_removed(tmp_path):
    """A student tree deeper than the grader's open-file limit (the red team's builds 20,000+ levels in 40 s):
    remove_tree, run with RLIMIT_NOFILE at 128, removes all 2,000 levels and reports nothing."""
    script = textwrap.dedent(f"""
        import os, resource, sys
        sys.path.insert(0, {os.path.join(ROOT, "autograder")!r})
        from grader.submission import remove_tree
        top = {str(tmp_path / "scratch")!r}
        os.mkdir(top)
        fd = os.open(top, os.O_RDONLY)
        for _ in range(2000):
            os.mkdir("d\\n", dir_fd=fd)
            child = os.open("d\\n", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.fchmod(fd, 0)
        os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        print(remove_tree(top), os.path.exists(top))
    """)
    proc = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=120)
    remove_tree(str(tmp_path / "scratch"))              # whatever is left (pytest's own cleanup recurses)
    assert proc.stdout.strip() == "[] False", proc.stdout[:300] + proc.stderr[-2000:]


def test_remove_tree_reports_instead_of_raising(tmp_path, monkeypatch):
    top = tmp_path / "scratch"
    (top / "a").mkdir(parents=True)
    (top / "a" / "f").write_text("x")
    real_rmdir = os.rmdir

    def refuse(path, *args, **kwargs):
        if path == "a":
            raise PermissionError(1, "Operation not permitted")
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", refuse)
    problems = remove_tree(str(top))
    assert any("a: " in p and "not permitted" in p for p in problems)


# -- a worker's folders, measured (submission.tree_usage; client.Worker checks limits.scratch_mb / scratch_files)

def test_folder_usage_counts_every_entry_and_the_blocks_it_fills(tmp_path):
    """Files, folders, a FIFO and links are each one entry; bytes are the disk blocks filled (a 1 GB sparse file
    fills almost none; a link to a large file counts as a link, not as its target); a FIFO and a link to
    /proc/kmsg are never opened (the count returns at once); both folders (scratch and home) add up."""
    scratch, home = tmp_path / "scratch", tmp_path / "home"
    (scratch / "sub").mkdir(parents=True)
    home.mkdir()
    (scratch / "sub" / "data").write_bytes(os.urandom(3 << 20))
    with open(scratch / "sparse", "wb") as fh:
        fh.truncate(1 << 30)
    os.mkfifo(scratch / "fifo")
    os.symlink("/proc/kmsg", scratch / "kmsg")
    os.symlink(scratch / "sub" / "data", home / "link-to-data")
    os.symlink("/usr", home / "link-to-usr")
    entries, used, over = tree_usage([str(scratch), str(home), str(tmp_path / "missing")], 100, 4 << 20)
    assert (entries, over) == (7, None)
    assert 3 << 20 <= used < (3 << 20) + (1 << 18)
    assert tree_usage([str(scratch), str(home)], 100, 2 << 20)[2] == "bytes"


def test_folder_usage_stops_counting_at_its_bound(tmp_path):
    """20,000 files in one folder and a tree 500 levels deep (the red team's goes to 30,000): the count looks
    at one entry more than the bound and stops; a tree deeper than HELD_FOLDERS is over whatever the bound."""
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(20_000):
        os.close(os.open(wide / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600))
    assert tree_usage([str(wide)], 100, 1 << 40)[::2] == (101, "entries")
    assert tree_usage([str(wide)], 20_000, 1 << 40)[::2] == (20_000, None)
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(500):
        os.mkdir("d\n", dir_fd=fd)
        child = os.open("d\n", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    entries, _, over = tree_usage([str(top)], 1_000_000, 1 << 40)
    assert (entries, over) == (HELD_FOLDERS + 1, "depth")
    remove_tree(str(top))


class CountingStream(io.RawIOBase):
    def __init__(self, data):
        self.data, self.consumed = data, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self.data[self.consumed:self.consumed + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.consumed += len(chunk)
        return len(chunk)


def test_oversized_reply_is_refused_before_it_is_read():
    head = json.dumps({"body": {"__nd__": 0}, "arrays": [{"dtype": "float64", "shape": [1 << 27]}]}).encode()
    frame = struct.pack(">Q", len(head)) + head + struct.pack(">Q", 8 << 27) + b"\0" * 64
    stream = CountingStream(frame)
    with pytest.raises(protocol.ProtocolError, match="over the limit"):
        protocol.read_message(stream, limit=32 << 20, header_limit=protocol.MAX_HEADER)
    assert stream.consumed == 8 + len(head)              # the header only: sizes are checked from the shapes


def test_oversized_json_header_is_refused_before_it_is_read():
    stream = CountingStream(struct.pack(">Q", 50 << 20) + b"[" * 64)
    with pytest.raises(protocol.ProtocolError, match="JSON header"):
        protocol.read_message(stream, limit=1 << 30, header_limit=protocol.MAX_HEADER)
    assert stream.consumed == 8


@pytest.mark.parametrize("call", [
    lambda v: checks.as_array(v, "W1", shape=(3, 4)),
    lambda v: checks.assert_close(v, np.zeros((3, 4)), "W1"),
    lambda v: checks.as_array(v, "W1"),
])
def test_wrong_size_reply_is_refused_before_conversion(call):
    huge = np.broadcast_to(np.uint8(1), (40_000_000,))   # 40 MB of numbers that take no memory yet
    tracemalloc.start()
    try:
        with pytest.raises(checks.GradeFailure, match="shape|at most"):
            call(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak                          # converting it would take 320 MB


@pytest.mark.parametrize("call", [
    lambda v: checks.as_array(v, "W1", shape=(3, 4)),
    lambda v: checks.assert_close(v, np.zeros((3, 4)), "W1"),
    lambda v: checks.as_array(v, "W1"),
])
def test_a_list_of_many_arrays_is_counted_before_conversion(call):
    """A legal reply of 4,000 distinct uint8 arrays (31 MB) would be 244 MB as float64: counted first."""
    many = [np.ones(7_840, dtype=np.uint8) for _ in range(4_000)]
    tracemalloc.start()
    try:
        with pytest.raises(checks.GradeFailure, match=r"list of .*numbers; expected"):
            call(many)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    assert checks.as_array([np.ones(4), [1, 2, 3, 4], (5, 6, 7, 8)], "W1", shape=(3, 4)).sum() == 4 + 10 + 26


def test_over_the_memory_limit_the_message_names_it(tmp_path):
    """An allocation beyond the worker's limit fails that test with the limit in MB; nothing else dies."""
    sub = tmp_path / "sub"
    sub.mkdir()
    text = open(os.path.join(SOLUTION, "numpy_ann.py")).read().replace(
        "        out = np.maximum(z, 0)\n", "        hog = np.ones(2**30 // 8)\n        out = np.maximum(z, 0)\n")
    (sub / "numpy_ann.py").write_text(text)
    out = tmp_path / "r.json"
    proc = subprocess.run([PYTHON, "-m", "grader.run", "--submission", str(sub), "--results", str(out), "--quiet",
                           "--files", "numpy_ann", "--tests", "public", "--set", "limits.memory_mb=400"],
                          cwd=os.path.join(ROOT, "autograder"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["extra_data"]["worker_memory_mb"] == 400
    failed = [t for t in result["tests"] if t["status"] == "failed" and t["max_score"] > 0]
    passed = [t for t in result["tests"] if t["status"] == "passed" and t["max_score"] > 0]
    assert failed and all("MemoryError" in t["output"] and "at most 400 MB" in t["output"] for t in failed)
    assert any("_softmax" in t["name"] for t in passed)       # tests that never call _relu are unaffected


def test_a_cleanup_that_raises_goes_into_the_report_not_over_the_results(tmp_path, monkeypatch):
    """remove_tree made to raise (as a tree the student built could make it): the results stay final and
    complete, and the instructor report names the cleanup problem."""
    from grader import grading, run

    def broken(path):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(grading, "remove_tree", broken)
    out = tmp_path / "results.json"
    run.main(["--submission", str(submission(tmp_path)), "--results", str(out), "--files", "numpy_ann",
              "--tests", "public", "--quiet"])
    result = json.loads(out.read_text())
    assert result["extra_data"]["partial"] is False
    numpy_tests = [t for t in result["tests"] if t["tags"][0] == "numpy_ann"]
    assert numpy_tests and all(t["score"] == t["max_score"] for t in numpy_tests)
    report = [t for t in result["tests"] if t["name"] == results_mod.REPORT_NAME][0]
    assert "cleanup: " in report["output"] and "RecursionError" in report["output"]
