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
  reaches the listeners;
- results.json is the final one (tests listed, extra_data.partial false) and
  smaller than ``results_max_bytes`` (default 1 MB); the instructor report
  matches no ``report_absent`` pattern (forged or unmarked lines);
- no task (thread) of any uid the run used is alive afterwards: every
  /proc/<pid>/task/<tid> is looked at, so a zombie leader whose other threads
  still run counts as alive;
- ``visible_absent``: strings no student-visible output may hold (what a private test's calls received);
- ``scratch_gone``: every folder the attack logged as ``scratch: <path>`` is
  gone after the grader (its cleanup finished); ``outside``: a folder the
  attack may point links at (__OUTSIDE__) and the autograder source are intact.

``data_copy``: the grader reads Fashion-MNIST from a world-readable copy
(__DATA__, passed as --data-dir), as where the Debian package is left readable:
only the grader's own layers, not the file permissions, guard the labels there.
``kernel_only``: only the kernel (Landlock) can stop this attack; such attacks
also run with NNAG_LANDLOCK=off (test_attack_without_landlock), where the
results must say that Landlock was off.

Placeholders in attack files: __CANARY__ (a folder the worker may write; passed
to the grader as --also-writable where it has that option), __RESULTS__,
__ROOT__ (AUTOGRADER_ROOT), __REPO__, __PORT__, __UNIX__, __WEIGHTS__ (``embedded_weights``: the attacked
file's weights trained elsewhere, by the reference on the true labels), __THUMBNAILS__ (the test set's 7x7
thumbnails and labels), __LOOKUP__ (hash of
each test image -> label), __DATA__ (the world-readable data copy, or the
Debian folder), __OUTSIDE__ (a root-owned folder outside the grader's reach).
"""
import contextlib
import fcntl
import functools
import hashlib
import inspect
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

from conftest import BUILD, HANDOUT, PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import grading_cache  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader import isolation as isolation_mod  # noqa: E402
from grader import results as results_mod  # noqa: E402
from grader.results import REPORT_NAME as REPORT  # noqa: E402

SECURITY = os.path.join(ROOT, "tests", "security")
ATTACKS = sorted(d for d in os.listdir(SECURITY) if os.path.isfile(os.path.join(SECURITY, d, "attack.toml")))
GRADED = ("numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist")
SECRET = "secret-7f3a9c-do-not-leak@example.edu"
# shorter per-request limits so that the hanging attacks end sooner; still the grader's own limits
FAST_LIMITS = ("--set", "time_limits.call=10", "--set", "time_limits.import=60")

pytestmark = [pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                                 reason="the sandbox's user separation needs the grader to run as root"),
              pytest.mark.duration(15)]


@pytest.fixture(scope="session")
def source(tmp_path_factory, built_zip):
    """The autograder zip, unpacked once per test process."""
    base = tmp_path_factory.mktemp("zip")
    os.chmod(base, 0o755)
    src = base / "source"
    with zipfile.ZipFile(built_zip("autograder")) as zf:
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


@functools.lru_cache(maxsize=None)
def embedded_weights(stem):
    """Python source of {name: (shape, base64 of float16 values)}: weights trained here, by the reference,
    on the true labels of 30,000 training images (accuracy above the threshold), as a student would embed a
    friend's weights.  Kept in build/ under the hash of what makes them (the reference's code, this function,
    the numpy and torch versions): 10-15 CPU-seconds each that a second make test need not spend again."""
    import torch
    made_of = hashlib.sha256()
    for path in (os.path.join(SOLUTION, f"{stem}.py"), os.path.join(SOLUTION, "utils.py")):
        with open(path, "rb") as fh:
            made_of.update(fh.read())
    made_of.update(f"{np.__version__} {torch.__version__}".encode())
    made_of.update(inspect.getsource(_trained_weights).encode())
    kept = os.path.join(BUILD, "redteam-weights", f"{stem}-{made_of.hexdigest()[:24]}.txt")
    try:
        with open(kept, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        pass
    text = _trained_weights(stem)
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(kept), delete=False, encoding="utf-8") as fh:
        fh.write(text)
    os.replace(fh.name, kept)
    return text


def _trained_weights(stem):
    import base64
    sys.path.insert(0, SOLUTION)
    try:
        import utils
        X_train, y_train, _, _ = utils.load_mnist_f(allow_download=False)
        X, Y = X_train[:30000].reshape(-1, 784) / 255.0, np.eye(10)[y_train[:30000]]
        if stem == "numpy_ann":
            import numpy_ann
            net = numpy_ann.NumpyANN(784, 128, 10, 0.1, random_seed=3)
            net.train(X, Y, X[:500], Y[:500], epochs=5, batch_size=64)
            weights = {name: getattr(net, name) for name in ("W1", "b1", "W2", "b2")}
        else:
            import torch
            import pytorch_ann
            net = pytorch_ann.PyTorchANN(784, 128, 10, random_seed=3)
            X, Y = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
            net.train(X, Y, X[:500], Y[:500], epochs=3, batch_size=64, learning_rate=0.1)
            weights = {k: v.detach().numpy() for k, v in net.model.state_dict().items()}
    finally:
        sys.path.remove(SOLUTION)
    return repr({k: (tuple(v.shape), base64.b64encode(np.asarray(v, np.float16).tobytes()).decode())
                 for k, v in weights.items()})


@functools.lru_cache(maxsize=None)
def thumbnails_of_test_set():
    """Python source of (base64 of the 10,000 test images' 7x7 thumbnails as uint8, their labels): what a
    nearest-neighbour lookup of the public test set embeds."""
    import base64
    sys.path.insert(0, HANDOUT)
    try:
        import utils
        _, _, X_test, y_test = utils.load_mnist_f(allow_download=False)
    finally:
        sys.path.remove(HANDOUT)
    thumbs = X_test.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).round().astype(np.uint8)
    return repr((base64.b64encode(thumbs.tobytes()).decode(), [int(v) for v in y_test]))


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
    assert spec["file"] in GRADED and spec["expect"] in ("zero", "twin") and isinstance(spec.get("report"), list), name
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


def run_autograder(source, root, *args, env=None):
    """run_autograder in the layout of Gradescope; returns (results, stdout, seconds, size in bytes)."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    os.symlink(source, root / "source")
    # a secret in the grader's environment must never reach the worker
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), NNAG_PYTHON=PYTHON, NNAG_TEST_SECRET=SECRET, **(env or {}))
    start = time.time()
    proc = subprocess.run(["sh", str(root / "source" / "run_autograder"), *FAST_LIMITS, *args], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = root / "results" / "results.json"
    raw = path.read_bytes()
    result = json.loads(raw)
    assert results_mod.validate(result) == [], results_mod.validate(result)
    return result, proc.stdout, time.time() - start, len(raw)


def graded_twin(source, root, *args):
    """An honest twin's results.json, graded by run_autograder as any attack is.  A twin is honest code: it is
    taken from the grading cache (tools/grading_cache.py) when this zip's grader graded the same bytes with the
    same arguments before; the attack itself is always graded afresh."""
    def run():
        result, stdout, _, _ = run_autograder(source, root, *args)
        return result, 0, stdout
    env = dict(os.environ, NNAG_PYTHON=PYTHON, NNAG_TEST_SECRET=SECRET)
    return grading_cache.cached_grading(str(root / "submission"), [*FAST_LIMITS, *args], run,
                                        autograder=str(source / "autograder"), env=env)[0]


def grader_has(source, option):
    """Whether the unpacked grader's run.py knows ``option`` (the isolation is being rewritten)."""
    return option in open(os.path.join(source, "autograder", "grader", "run.py")).read()


def worker_uids(result):
    """Every uid this grading ran workers as: extra_data.isolation.worker_uids ({stem: uid}) and the
    retired ones, or the older extra_data.worker_uid."""
    extra = result["extra_data"]
    iso = extra.get("isolation") if isinstance(extra.get("isolation"), dict) else {}
    if isinstance(iso.get("worker_uids"), dict):
        uids = set(iso["worker_uids"].values())
        for line in iso.get("uids_retired", []):
            found = re.search(r"uid (\d+)", str(line))
            if found:
                uids.add(int(found.group(1)))
    else:
        uids = {extra.get("worker_uid")}
    base = config_mod.load()["grading"]["worker_uid_base"]
    assert uids and all(isinstance(u, int) and u >= base for u in uids), \
        f"the workers did not run as users of their own: {uids}"
    return uids


@contextlib.contextmanager
def holding_slots(uids):
    """Hold the worker slots of ``uids`` (isolation's lock files) while a finished grading's uids are checked:
    no other grader of this machine (make test's other processes) can start workers under them meanwhile.
    The grader takes the least recently taken slot, so the one just released is never the next one taken."""
    g = config_mod.load()["grading"]
    slots = sorted({(uid - g["worker_uid_base"]) // g["uids_per_slot"] for uid in uids})
    held = []
    try:
        for slot in slots:
            fd = os.open(os.path.join(isolation_mod.slot_folder(), str(slot)), os.O_RDWR)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pytest.fail(f"another grader took slot {slot} before this grading's uids were checked")
        yield
    finally:
        for fd in held:
            os.close(fd)


def live_tasks(uids):
    """[(pid, tid, state)] of every task (thread) of ``uids`` that is not dead, from /proc/*/task/*:
    a thread-group leader that exited while other threads run is found through those threads."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
            except (OSError, ValueError):
                continue
            state = (fields.get("State", "").split() or ["?"])[0]
            if int(fields.get("Uid", "-1").split()[0]) in uids and state not in ("Z", "X"):
                found.append((int(pid), int(tid), state))
    return found


def scores(result, stem):
    return {t["name"] + "#" + t["number"]: t["score"] for t in result["tests"] if t["tags"][0] == stem}


def instructor_report(result):
    report = [t for t in result["tests"] if t["name"] == REPORT]
    assert len(report) == 1 and report[0]["visibility"] == "hidden" and report[0]["max_score"] == 0
    return report[0]["output"]


@pytest.fixture(scope="module")
def world_data(source):
    """A world-readable copy of the grader's Fashion-MNIST (as the Debian package installs it)."""
    folder = tempfile.mkdtemp(prefix="nnag-redteam-data-")
    os.chmod(folder, 0o755)
    for f in os.listdir(os.path.join(source, "data")):
        if f.endswith(".gz"):
            shutil.copy(os.path.join(source, "data", f), os.path.join(folder, f))
            os.chmod(os.path.join(folder, f), 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def remove_deep(path):
    """Remove a scratch folder an attack left (any depth: rm, not the recursive shutil.rmtree)."""
    real = os.path.realpath(path)
    if real.startswith(os.path.join(tempfile.gettempdir(), "nnag-")) and os.path.lexists(real):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", real], capture_output=True, timeout=600)


def attack(name, spec, source, lookup, tmp_path, world_data, env=None):
    """Grade the attack; checks what must hold in any setting; returns (result, log, subst, others)."""
    os.chmod(tmp_path, 0o755)
    canary = pathlib.Path(tempfile.mkdtemp(prefix="nnag-redteam-", dir="/dev/shm"))   # writable by the worker
    os.chmod(canary, 0o1777)
    (canary / "log").touch()
    os.chmod(canary / "log", 0o666)
    outside = pathlib.Path(tempfile.mkdtemp(prefix="nnag-redteam-outside-", dir="/dev/shm"))   # root's
    os.chmod(outside, 0o755)
    (outside / "keep").write_text("keep\n")
    listener = Listener(canary) if spec.get("listener") else None
    root = tmp_path / "ag"
    subst = {"__CANARY__": str(canary), "__RESULTS__": str(root / "results" / "results.json"),
             "__ROOT__": str(root), "__REPO__": ROOT, "__PORT__": str(listener.port if listener else 9),
             "__UNIX__": listener.unix_path if listener else "/nonexistent",
             "__LOOKUP__": repr(lookup) if spec.get("lookup") else "{}",
             "__WEIGHTS__": embedded_weights(spec["file"]) if spec.get("embedded_weights") else "{}",
             "__THUMBNAILS__": thumbnails_of_test_set() if spec.get("thumbnails") else "None",
             "__DATA__": world_data if spec.get("data_copy") else "/usr/share/datasets/fashion-mnist",
             "__OUTSIDE__": str(outside)}
    build_submission(name, spec, root / "submission", subst)
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": SECRET}]}))
    others = [f for f in GRADED if f != spec["file"]]
    args = ["--skip-training", ",".join(others)]
    if grader_has(source, "--also-writable"):
        args += ["--also-writable", str(canary)]
    if spec.get("data_copy"):
        args += ["--data-dir", world_data]
    scratches = []
    try:
        result, stdout, _, size = run_autograder(source, root, *args, env=env)
        uids = worker_uids(result)
        with holding_slots(uids):
            written = (root / "results" / "results.json").read_bytes()
            time.sleep(3 if spec.get("daemon") else 0.5)       # a surviving daemon would act now
            log_before = (canary / "log").read_text(errors="replace")
            time.sleep(1)
            assert (root / "results" / "results.json").read_bytes() == written, \
                "results.json changed after the grader"
            assert (canary / "log").read_text(errors="replace") == log_before, \
                "a process of the attack is still running"
            left = live_tasks(uids)
        assert left == [], f"tasks of the worker users are left (pid, tid, state): {left}"
        scratches = re.findall(r"^scratch: (\S+)$", log_before, re.M)
        if spec.get("scratch_gone"):
            assert scratches, "the attack did not log its scratch folder"
            kept = [p for p in scratches if os.path.lexists(p)]
            assert kept == [], f"the grader's cleanup left the attack's folders: {kept}"
        if spec.get("outside"):
            assert (outside / "keep").read_text() == "keep\n", "a file outside the scratch folders was removed"
            assert os.path.isfile(os.path.join(source, "autograder", "grader", "run.py")), "the source was removed"
    finally:
        if listener:
            listener.close()
        log = (canary / "log").read_text(errors="replace")
        (tmp_path / "canary.log").write_text(log)          # kept with the test's folder, for a look
        shutil.rmtree(canary, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)
        for p in scratches:
            remove_deep(p)
    if listener:
        assert listener.connections == [], listener.connections
    limit = spec.get("results_max_bytes", 1_000_000)
    assert size <= limit, f"results.json is {size} bytes, more than {limit}"
    assert result["tests"] and result["extra_data"].get("partial") is False, \
        f"results.json is not the final one: {result['output'][:500]!r}"
    for line in spec.get("canary", []):
        assert line in log, f"the attack did not run as written: {line!r} not in {log[:3000]!r}"
    return result, log, stdout, subst, others


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_fails(name, source, lookup, world_data, tmp_path):
    spec = load(name)
    result, log, stdout, subst, others = attack(name, spec, source, lookup, tmp_path, world_data)

    # the attacked file: zero, or what its honest twin earns
    got = scores(result, spec["file"])
    assert got, f"no tests of {spec['file']} ran"
    if spec["expect"] == "zero":
        assert all(v == 0 for v in got.values()), {k: v for k, v in got.items() if v}
    else:
        twin_root = tmp_path / "twin"
        build_submission(name, spec, twin_root / "submission", subst, honest=True)
        twin_args = ["--data-dir", world_data] if spec.get("data_copy") else []
        twin = graded_twin(source, twin_root, "--files", spec["file"], *twin_args)
        assert got == scores(twin, spec["file"])
    # the other files: full marks on their fast tests
    for stem in others:
        lost = [t["name"] for t in result["tests"] if t["tags"][0] == stem and t["score"] != t["max_score"]]
        assert lost == [], f"{stem} lost points: {lost}"

    # the instructor's report names the attack; students do not see it
    report = instructor_report(result)
    (tmp_path / "report.txt").write_text(report)
    for pattern in spec["report"]:
        assert re.search(pattern, report, re.I), (pattern, report)
    for pattern in spec.get("report_absent", []):
        assert not re.search(pattern, report), (f"the report holds {pattern!r}", report[:3000])
    assert result["stdout_visibility"] == "hidden"
    student_text = result["output"] + "".join(t["output"] for t in result["tests"] if t["visibility"] != "hidden")
    assert "refused:" not in student_text and "resource limit:" not in student_text

    for line in spec.get("canary_absent", []):
        assert line not in log, f"the attack succeeded: {line!r} in {log[:3000]!r}"
    for text in spec.get("visible_absent", []):
        assert text not in student_text, f"a student-visible output holds {text!r}: {student_text[:3000]!r}"
    if spec.get("secret_check"):
        private_first = open(os.path.join(source, "autograder", "tests", "private",
                                          "test_numpy_ann_private.py")).readline().strip()
        everything = json.dumps(result) + stdout + log
        assert SECRET not in everything and private_first not in everything


KERNEL_ONLY = [a for a in ATTACKS if load(a).get("kernel_only")]


@pytest.mark.parametrize("name", KERNEL_ONLY)
def test_attack_without_landlock(name, source, lookup, world_data, tmp_path):
    """The attacks only Landlock can stop, graded with NNAG_LANDLOCK=off (the kernel layer missing).

    What it proves: such a run is never silently passed as confined.  results.json stays valid and
    final, the other files keep full marks, no task of the workers' uids is left, and
    extra_data.isolation.landlock says "off..." for every file, so the staff can see that this
    grading ran without the kernel's file rules.  Whether the attack then gets through (its
    ``canary_absent`` line in the log) is printed, not asserted: with the kernel layer off the
    other layers (audit hook, file permissions) may or may not stop it; what must not happen is a
    run that lets it through and claims Landlock was on.  It does not prove that Landlock stops
    the attack: test_attack_fails does, with Landlock on."""
    spec = load(name)
    if not grader_has(source, "--also-writable"):
        pytest.skip("this grader has no Landlock yet (no --also-writable option)")
    result, log, _, _, others = attack(name, spec, source, lookup, tmp_path, world_data,
                                       env={"NNAG_LANDLOCK": "off"})
    landlock = result["extra_data"]["isolation"]["landlock"]
    states = list(landlock.values()) if isinstance(landlock, dict) else [landlock]
    assert states and all(isinstance(v, str) and v.startswith("off") for v in states), landlock
    got_through = any(line in log for line in spec.get("canary_absent", []))
    for stem in others:
        lost = [t["name"] for t in result["tests"] if t["tags"][0] == stem and t["score"] != t["max_score"]]
        assert lost == [], f"{stem} lost points: {lost}"
    print(f"{name} with Landlock off: {'GOT THROUGH' if got_through else 'held by the other layers'}; "
          f"extra_data.isolation.landlock = {landlock!r}")


def test_reference_has_nothing_to_report(source, tmp_path):
    """No false alarms: the reference's instructor report is empty (its training skipped)."""
    os.chmod(tmp_path, 0o755)
    root = tmp_path / "ag"
    build_submission("reference", {"file": "numpy_ann", "base": "solution"}, root / "submission", {})
    result = run_autograder(source, root, "--skip-training", ",".join(GRADED))[0]
    report = [t for t in result["tests"] if t["name"] == REPORT][0]
    assert report["output"].split("\n\n")[0] == "Nothing to report." and report["status"] == "passed", report["output"]
    assert all(t["score"] == t["max_score"] for t in result["tests"])
