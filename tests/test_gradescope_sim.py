"""The Gradescope simulation (tools/gradescope_sim.py): its verdicts, and one tier run of the reference."""
import json
import os
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT, can_simulate_gradescope

sys.path.insert(0, os.path.join(ROOT, "tools"))
import gradescope_sim  # noqa: E402


def write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_results_state_tells_final_partial_placeholder_and_missing(tmp_path):
    test = {"name": "t", "score": 1, "max_score": 1, "status": "passed"}
    assert gradescope_sim.summarize(write(tmp_path / "a", {"tests": [test], "extra_data": {"partial": False}}))[0] \
        == "final"
    assert gradescope_sim.summarize(write(tmp_path / "b", {"tests": [test], "extra_data": {"partial": True}}))[0] \
        == "partial"
    assert gradescope_sim.summarize(write(tmp_path / "c", {"tests": [], "output": "Grading did not finish. If"}))[0] \
        == "placeholder"
    assert gradescope_sim.summarize(str(tmp_path / "none"))[0] == "missing"


@pytest.mark.duration(300)
@pytest.mark.skipif(not can_simulate_gradescope(), reason="the simulation needs root and writable cgroups")
def test_reference_gets_full_marks_in_the_default_tier(tmp_path, built_zip):
    """0.5 CPU, 768 MB without swap, killed at 600 s: final results, full marks, one worker thread, no OOM kill."""
    zip_path = built_zip("autograder")
    summary = tmp_path / "summary.json"
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "gradescope_sim.py"), "--tier", "default",
                           "--zip", str(zip_path), "--json", str(summary)], capture_output=True, text=True,
                          timeout=1500)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["results"] == "final" and not s["killed_at_timeout"]
    assert s["score"] == s["max_score"] > 60
    assert s["leaderboard"][0]["name"] == "Accuracy" and s["leaderboard"][0]["value"] >= 0.9
    assert s["oom_kills"] == 0
    assert s["worker_threads"] == 1
    assert s["worker_memory_mb"] < 768
    assert s["time_scale"] == 2                           # per-request limits for one CPU, doubled at 0.5 CPU
    assert set(s["time_per_file"]) == set(s["per_file"]) - {"general"}
    assert all(not d["lost_to_clock"] for d in s["time_per_file"].values()), s["time_per_file"]


@pytest.mark.skipif(not can_simulate_gradescope(), reason="needs root and writable cgroups")
def test_a_kill_by_the_containers_oom_killer_is_named(tmp_path):
    """When the container's OOM killer stops the worker, the test says so (not only "SIGKILL")."""
    sub = tmp_path / "sub"
    sub.mkdir()
    text = open(os.path.join(ROOT, "solution", "numpy_ann.py")).read().replace(
        "        out = np.maximum(z, 0)\n", "        hog = np.ones(600 * 2**20 // 8)\n        out = np.maximum(z, 0)\n")
    (sub / "numpy_ann.py").write_text(text)
    group = gradescope_sim.Cgroup(f"nnag-test-oom-{os.getpid()}", 2.0, 300)
    out = tmp_path / "r.json"
    try:
        # a reserve below zero lets the worker's own limit exceed the container: only the kernel stops it
        proc = subprocess.run([PYTHON, "-m", "grader.run", "--submission", str(sub), "--results", str(out),
                               "--quiet", "--files", "numpy_ann", "--tests", "public", "-k", "relu",
                               "--set", "limits.reserve_mb=-1000"], cwd=os.path.join(ROOT, "autograder"),
                              capture_output=True, text=True, timeout=300, preexec_fn=group.enter)
        ooms = group.oom_kills()
    finally:
        group.kill_all()
        group.remove()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ooms and ooms > 0
    result = json.loads(out.read_text())
    failed = [t["output"] for t in result["tests"] if t["status"] == "failed" and t["max_score"] > 0]
    assert failed and all("ran out of memory" in o for o in failed), failed
    assert result["extra_data"]["worker_memory_mb"] > 300
