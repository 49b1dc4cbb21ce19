"""Shared helpers for the package's self-tests, and how make test is run and reported.

- Order: the tests run longest first, each followed by one of the shortest (by the larger of
  the last run's seconds, kept in build/test-durations.json, and the test's
  ``duration(seconds)`` marker; else 1 s), so that under pytest-xdist the long ones start at
  once and the short ones fill the gaps.
- Build once: ``built_zip(kind)`` builds dist/'s zips once per run for every xdist worker.
- Summary: the last line of make test gives the wall time, the CPU time its tests used, the tests
  by outcome and the grading cache's hits and misses (tools/grading_cache.py; each grader process
  of the run appends to the file in NNAG_CACHE_STATS); above it, the tests that used the most CPU.
- CPU per test: the test process's own CPU time and that of every process it started and waited for
  (the graders, and through them their workers), from setup to teardown; kept beside the seconds in
  build/test-durations.json (key "cpu:<node id>").  It is what decides the wall time on 2 cores.
"""
import contextlib
import fcntl
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTION = os.path.join(ROOT, "solution")
HANDOUT = os.path.join(ROOT, "handout")
PYTHON = sys.executable
BUILD = os.path.join(ROOT, "build")
DURATIONS = os.path.join(BUILD, "test-durations.json")
WORKER = os.environ.get("PYTEST_XDIST_WORKER")          # None in the controlling process (or without xdist)

# Several graders share the 2 cores under make test: one torch / BLAS thread per worker (as in Gradescope's
# default tier), never threads spinning against each other.  tools/gradescope_sim.py gives its grader a clean
# environment and the tier's own thread count.
os.environ.setdefault("NNAG_WORKER_THREADS", "1")

if WORKER is None and "NNAG_CACHE_STATS" not in os.environ:
    # set before xdist starts its workers: they, and every grader they start, inherit it
    os.makedirs(BUILD, exist_ok=True)
    os.environ["NNAG_CACHE_STATS"] = os.path.join(BUILD, f".cache-stats-{os.getpid()}")
    _OWN_STATS = True
else:
    _OWN_STATS = False


def pytest_configure(config):
    config.addinivalue_line("markers", "duration(seconds): the test's seconds on 2 cores with the grading cache "
                                       "cold, for make test's order (longest first)")
    # the grader's own markers (weight, training, cost...), for the tests that load a grader test module
    sys.path.insert(0, os.path.join(ROOT, "autograder"))
    from grader.plugin import MARKERS
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config._nnag_start = time.time()


def _expected_seconds(item, measured):
    """The larger of the last run's seconds and the duration marker (a marked test is long when the grading
    cache is cold, even after a warm run measured it short), else 1 s."""
    marker = item.get_closest_marker("duration")
    return max(measured.get(item.nodeid, 0.0), float(marker.args[0]) if marker else 0.0) or 1.0


def pytest_collection_modifyitems(session, config, items):
    """Longest first, each followed by one of the shortest: an xdist worker always holds the test it runs and
    the next one, so a short one waits behind each long one instead of another long one.  The same order in
    every xdist worker (the durations file is only written at the end of a run)."""
    try:
        with open(DURATIONS, encoding="utf-8") as fh:
            measured = json.load(fh)
    except (OSError, ValueError):
        measured = {}
    longest_first = sorted(items, key=lambda item: -_expected_seconds(item, measured))
    order = []
    while longest_first:
        order.append(longest_first.pop(0))
        if longest_first:
            order.append(longest_first.pop())
    items[:] = order


_DURATIONS = {}
_CPU = {}
CPU_SHOWN = 10          # the tests that used the most CPU, listed before the summary line


def _cpu_seconds():
    """User and system CPU time of this process and of its waited-for descendants."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def pytest_runtest_setup(item):
    item._nnag_cpu_start = _cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    start = getattr(item, "_nnag_cpu_start", None)
    if call.when == "teardown" and start is not None:
        outcome.get_result().user_properties.append(("cpu_seconds", round(_cpu_seconds() - start, 2)))


def pytest_runtest_logreport(report):
    """Seconds per test (setup, call and teardown together) and its CPU seconds; in the controlling process
    under xdist."""
    if WORKER is None:
        _DURATIONS[report.nodeid] = _DURATIONS.get(report.nodeid, 0.0) + report.duration
        for key, value in report.user_properties:
            if key == "cpu_seconds":
                _CPU[report.nodeid] = _CPU.get(report.nodeid, 0.0) + float(value)


def _cache_counts():
    try:
        with open(os.environ.get("NNAG_CACHE_STATS", ""), encoding="utf-8") as fh:
            events = fh.read().split()
    except OSError:
        events = []
    return events.count("hit"), events.count("miss")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if WORKER is not None:
        return
    stats = terminalreporter.stats
    counts = {k: len(stats.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    hits, misses = _cache_counts()
    total = sum(counts.values())
    if _CPU:
        terminalreporter.write_sep("=", "most CPU time (the test's processes and all they started)")
        for nodeid, cpu in sorted(_CPU.items(), key=lambda kv: -kv[1])[:CPU_SHOWN]:
            terminalreporter.write_line(f"{cpu:8.1f} CPU-s {_DURATIONS.get(nodeid, 0.0):8.1f} s  {nodeid}")
    terminalreporter.write_line(
        f"make test: {time.time() - config._nnag_start:.0f} s wall, {sum(_CPU.values()) / 60:.1f} CPU-min in tests, "
        f"{total} tests ({counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['error']} errors, {counts['skipped']} skipped), "
        f"grading cache {hits} hits, {misses} misses", bold=True)


def pytest_sessionfinish(session, exitstatus):
    if WORKER is not None:
        return
    durations = _DURATIONS
    if durations and not getattr(session.config.option, "collectonly", False):
        try:
            with open(DURATIONS, encoding="utf-8") as fh:
                merged = json.load(fh)
        except (OSError, ValueError):
            merged = {}
        merged.update({k: round(v, 2) for k, v in durations.items()})
        merged.update({f"cpu:{k}": round(v, 2) for k, v in _CPU.items()})
        os.makedirs(BUILD, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=BUILD, prefix=".durations-")
        with os.fdopen(fd, "w") as fh:
            json.dump(merged, fh, indent=0, sort_keys=True)
        os.replace(tmp, DURATIONS)


def pytest_unconfigure(config):
    if _OWN_STATS:
        with contextlib.suppress(OSError):
            os.unlink(os.environ["NNAG_CACHE_STATS"])


@contextlib.contextmanager
def _run_lock(name, tmp_path_factory):
    """A folder shared by this run's processes (xdist's workers share the parent of their base temp), held
    under an exclusive lock named ``name``."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if WORKER else base
    with open(shared / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield shared
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory):
    """``built_zip("autograder")`` / ``built_zip("handout")``: the zip built by tools/build_zips.py, once per
    run for every worker (a test that changes it must copy it first)."""
    def build(kind):
        with _run_lock(f"zip-{kind}", tmp_path_factory) as shared:
            path = shared / f"{kind}.zip"
            if not path.exists():
                tmp = shared / f".{kind}.zip.tmp"
                subprocess.run([PYTHON, os.path.join(ROOT, "tools", "build_zips.py"), kind, "--out", str(tmp)],
                               check=True, capture_output=True)
                os.replace(tmp, path)
            os.chmod(shared, 0o755)
            return path
    return build


@pytest.fixture
def slot():
    """A worker slot of the grader's (its uids and gid), taken for the test and given back; None without root."""
    sys.path.insert(0, os.path.join(ROOT, "autograder"))
    from grader import config as config_mod, isolation
    found = isolation.take_slot(config_mod.load())
    yield found
    if found:
        found.release()


@pytest.fixture
def private_slots(tmp_path, monkeypatch):
    """``config, folder = private_slots(count)``: isolation.take_slot's lock folder moved to this test's own
    (``folder``, not created yet) and a config of ``count`` slots whose uids are far from any real grader's, so
    that a test of slot taking never meets make test's other graders."""
    sys.path.insert(0, os.path.join(ROOT, "autograder"))
    from grader import config as config_mod, isolation
    folder = tmp_path / "slots"
    monkeypatch.setattr(isolation, "SLOT_DIR", str(folder))

    def make(count):
        config = config_mod.load()
        config["grading"] = dict(config["grading"], worker_uid_base=3_000_000_000, worker_slots=count)
        return config, folder
    return make


def can_simulate_gradescope():
    """Root with writable cgroups: tools/gradescope_sim.py can run the zip inside a tier's limits here."""
    return os.name == "posix" and os.geteuid() == 0 and (
        os.access("/sys/fs/cgroup/cpu", os.W_OK) or os.path.exists("/sys/fs/cgroup/cgroup.controllers"))


@pytest.fixture
def solution_path(monkeypatch):
    """Import the reference files (for self-tests only; the grader never does)."""
    monkeypatch.syspath_prepend(SOLUTION)
    yield SOLUTION
    for name in ("utils", "numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist"):
        sys.modules.pop(name, None)
