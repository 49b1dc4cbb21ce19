"""The red-team suite: every attack in tests/security/<name>/attack.toml must fail.

Each attack replaces one file of the reference submission and is graded by the
unpacked autograder zip (the Gradescope layout, run_autograder as root, the
worker as its own unprivileged user): the attacked file's tests in full, the
other files' tests without their training (to show there is no spill-over).
For each attack:
- the attacked file scores 0 on every test ("zero"), or exactly what its
  honest twin scores ("twin": the attack's code replaced by ``honest_append``,
  or files in ``twin_remove`` left out);
- every other file gets full marks;
- results.json is valid, written by the grader only, and unchanged after the
  grader has exited (daemons get time to try);
- the grader ends by its own limits; no process of a worker user is left;
- the instructor-only report (a hidden 0-point test) matches every ``report``
  pattern, and nothing student-visible mentions it;
- ``canary`` lines (proof the attack ran) appear in its log, ``canary_absent``
  lines (proof it succeeded) do not; nothing secret leaks; no connection
  reaches the listeners.

Placeholders in attack files: __CANARY__ (a folder the worker may write),
__RESULTS__, __ROOT__ (AUTOGRADER_ROOT), __REPO__, __PORT__, __UNIX__,
__LOOKUP__ (hash of each test image -> label).
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zipfile

import numpy as np
import pytest

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import client  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader import results as results_mod  # noqa: E402
from grader.results import REPORT_NAME as REPORT  # noqa: E402

SECURITY = os.path.join(ROOT, "tests", "security")
ATTACKS = sorted(d for d in os.listdir(SECURITY) if os.path.isfile(os.path.join(SECURITY, d, "attack.toml")))
GRADED = ("numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist")
SECRET = "secret-7f3a9c-do-not-leak@example.edu"
# shorter per-request limits so that the hanging attacks end sooner; still the grader's own limits
FAST_LIMITS = ("--set", "time_limits.call=10", "--set", "time_limits.import=60")

pytestmark = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                                reason="the sandbox's user separation needs the grader to run as root")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The autograder zip, built and unpacked once."""
    base = tmp_path_factory.mktemp("zip")
    os.chmod(base, 0o755)
    zip_path = base / "autograder.zip"
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "build_zips.py"), "autograder", "--out", str(zip_path)],
                   check=True, capture_output=True)
    src = base / "source"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(src)
    return src


@pytest.fixture(scope="module")
def lookup():
    """{sha1 prefix of a test image's bytes: label}, as an attacker would embed it."""
    sys.path.insert(0, HANDOUT)
    try:
        import utils
        _, _, X_test, y_test = utils.load_mnist_f(allow_download=False)
    finally:
        sys.path.remove(HANDOUT)
    return {hashlib.sha1(x.reshape(784).astype(np.uint8).tobytes()).hexdigest()[:16]: int(y)
            for x, y in zip(X_test, y_test)}


class Listener:
    """A TCP and two Unix-socket listeners that record every connection."""

    def __init__(self, folder):
        self.connections = []
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.unix_path = str(folder / "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind(f"\0nnag-redteam-{self.port}")
        self.open = True
        for s in (self.tcp, self.unix, self.abstract):
            s.listen(5)
            s.settimeout(0.2)
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, sock):
        while self.open:
            try:
                conn, _ = sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections.append(conn.recv(100))

    def close(self):
        self.open = False
        time.sleep(0.3)
        for s in (self.tcp, self.unix, self.abstract):
            s.close()


def load(name):
    with open(os.path.join(SECURITY, name, "attack.toml"), "rb") as fh:
        spec = tomllib.load(fh)
    assert spec["file"] in GRADED and spec["expect"] in ("zero", "twin") and spec.get("report"), name
    return spec


def build_submission(name, spec, dest, subst, honest=False):
    """The reference for the other files; the attacked file from base + append (or the honest twin)."""
    dest.mkdir(parents=True)
    for f in os.listdir(SOLUTION):
        if f.endswith((".py", ".png", ".pth")) and f != "utils.py":
            shutil.copy(os.path.join(SOLUTION, f), dest / f)
    target = f"{spec['file']}.py"
    base = HANDOUT if spec["base"] == "handout" else SOLUTION
    text = open(os.path.join(base, target)).read()
    text += spec.get("honest_append", "") if honest else spec.get("append", "")
    for key, value in subst.items():
        text = text.replace(key, value)
    (dest / target).write_text(text)
    if honest:
        for f in spec.get("twin_remove", []):
            (dest / f).unlink()
        return dest
    folder = os.path.join(SECURITY, name)
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f == "attack.toml":
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), folder)
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            content = open(os.path.join(dirpath, f)).read()
            for key, value in subst.items():
                content = content.replace(key, value)
            (dest / rel).write_text(content)
    if spec.get("pickle_payload"):
        code = (f"import torch, os\nclass P:\n    def __reduce__(self):\n"
                f"        return (os.system, ('echo PWNED >> {subst['__CANARY__']}/log',))\n"
                f"torch.save({{'fc.weight': P()}}, {str(dest / 'fmnist.pth')!r})\n")
        subprocess.run([PYTHON, "-c", code], check=True, capture_output=True)
    return dest


def run_autograder(source, root, *args):
    """run_autograder in the layout of Gradescope; returns (results, stdout, seconds)."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    os.symlink(source, root / "source")
    # a secret in the grader's environment must never reach the worker
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), NNAG_PYTHON=PYTHON, NNAG_TEST_SECRET=SECRET)
    start = time.time()
    proc = subprocess.run(["sh", str(root / "source" / "run_autograder"), *FAST_LIMITS, *args], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = root / "results" / "results.json"
    result = json.loads(path.read_text())
    assert results_mod.validate(result) == [], results_mod.validate(result)
    return result, proc.stdout, time.time() - start


def worker_processes(result):
    """Live processes of the worker user this grading ran as."""
    uid = result["extra_data"]["worker_uid"]
    base = config_mod.load()["grading"]["worker_uid_base"]
    assert uid is not None and uid >= base, "the worker did not run as a user of its own"
    return client.processes_of(uid)


def scores(result, stem):
    return {t["name"] + "#" + t["number"]: t["score"] for t in result["tests"] if t["tags"][0] == stem}


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_fails(name, source, lookup, tmp_path):
    spec = load(name)
    os.chmod(tmp_path, 0o755)
    canary = pathlib.Path(tempfile.mkdtemp(prefix="nnag-redteam-", dir="/dev/shm"))   # writable by the worker
    os.chmod(canary, 0o1777)
    (canary / "log").touch()
    os.chmod(canary / "log", 0o666)
    listener = Listener(canary) if spec.get("listener") else None
    root = tmp_path / "ag"
    subst = {"__CANARY__": str(canary), "__RESULTS__": str(root / "results" / "results.json"),
             "__ROOT__": str(root), "__REPO__": ROOT, "__PORT__": str(listener.port if listener else 9),
             "__UNIX__": listener.unix_path if listener else "/nonexistent",
             "__LOOKUP__": repr(lookup) if spec.get("lookup") else "{}"}
    build_submission(name, spec, root / "submission", subst)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": SECRET}]}))
    others = [f for f in GRADED if f != spec["file"]]
    try:
        result, stdout, _ = run_autograder(source, root, "--skip-training", ",".join(others))
        written = (root / "results" / "results.json").read_bytes()
        time.sleep(3 if spec.get("daemon") else 0.5)       # a surviving daemon would act now
        log_before = (canary / "log").read_text()
        time.sleep(1)
        assert (root / "results" / "results.json").read_bytes() == written, "results.json changed after the grader"
        assert (canary / "log").read_text() == log_before, "a process of the attack is still running"
        assert worker_processes(result) == [], "processes of the worker user are left"
    finally:
        if listener:
            listener.close()
        log = (canary / "log").read_text()
        shutil.rmtree(canary, ignore_errors=True)
    if listener:
        assert listener.connections == [], listener.connections

    # the attacked file: zero, or what its honest twin earns
    got = scores(result, spec["file"])
    assert got, f"no tests of {spec['file']} ran"
    if spec["expect"] == "zero":
        assert all(v == 0 for v in got.values()), {k: v for k, v in got.items() if v}
    else:
        twin_root = tmp_path / "twin"
        build_submission(name, spec, twin_root / "submission", subst, honest=True)
        twin, _, _ = run_autograder(source, twin_root, "--files", spec["file"])
        assert got == scores(twin, spec["file"])
    # the other files: full marks on their fast tests
    for stem in others:
        lost = [t["name"] for t in result["tests"] if t["tags"][0] == stem and t["score"] != t["max_score"]]
        assert lost == [], f"{stem} lost points: {lost}"

    # the instructor's report names the attack; students do not see it
    report = [t for t in result["tests"] if t["name"] == REPORT]
    assert len(report) == 1 and report[0]["visibility"] == "hidden" and report[0]["max_score"] == 0
    for pattern in spec["report"]:
        assert re.search(pattern, report[0]["output"], re.I), (pattern, report[0]["output"])
    assert result["stdout_visibility"] == "hidden"
    student_text = result["output"] + "".join(t["output"] for t in result["tests"] if t["visibility"] != "hidden")
    assert "refused:" not in student_text and "resource limit:" not in student_text

    for line in spec.get("canary", []):
        assert line in log, f"the attack did not run as written: {line!r} not in {log!r}"
    for line in spec.get("canary_absent", []):
        assert line not in log, f"the attack succeeded: {line!r} in {log!r}"
    if spec.get("secret_check"):
        hidden_first = open(os.path.join(source, "autograder", "tests", "hidden",
                                         "test_numpy_ann_hidden.py")).readline().strip()
        everything = json.dumps(result) + stdout + log
        assert SECRET not in everything and hidden_first not in everything


def test_reference_has_nothing_to_report(source, tmp_path):
    """No false alarms: the reference's instructor report is empty (its training skipped)."""
    os.chmod(tmp_path, 0o755)
    root = tmp_path / "ag"
    build_submission("reference", {"file": "numpy_ann", "base": "solution"}, root / "submission", {})
    result, _, _ = run_autograder(source, root, "--skip-training", ",".join(GRADED))
    report = [t for t in result["tests"] if t["name"] == REPORT][0]
    assert report["output"] == "Nothing to report." and report["status"] == "passed", report["output"]
    assert all(t["score"] == t["max_score"] for t in result["tests"])
