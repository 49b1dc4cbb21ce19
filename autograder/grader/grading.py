"""One grading run: the object that owns everything from a submission to its results.json.

``GradingRun(options).execute()`` is all of grader.run's work after the command line.  The run
stages the submission (scratch folders, isolation, the session of workers), hands pytest the
plugin (plugin.Plugin: fixtures and hooks) wired to its record (record.Record: a record per test,
the numbering, the instructor report), and writes results.json (assembly.assemble) before any
student code runs, after each file's quick tests and each training test, and at the end.  Beside
it are the policies the pieces share: the data set, loaded once (Inputs), the paths a worker must not
open (protected_paths), each worker's memory (worker_memory), the clock (make_clock).  Nothing lives
in module globals: a second run in the same process starts from nothing.

A TA adds a test by writing one function in autograder/tests/public/ or
autograder/tests/private/, in the module of the file it grades (``test_<file stem>*.py``),
optionally with markers:

    @pytest.mark.weight(2)               points (default 1); the one home of a test's points: make config adds
                                         them up per file (grader/points.py)
    @pytest.mark.number("1.4")           Gradescope test number (default: automatic)
    @pytest.mark.visibility("visible")   default: by directory (see config [grading])
    @pytest.mark.calls_train             calls the student's training code on a few images (run_public_tests.py
                                         --no-training leaves it out)
    @pytest.mark.training                trains on the full data, in a fresh worker (skippable with
                                         --skip-training)

The fixtures a test may ask for are plugin.py's.
"""
import importlib.util
import os
import signal
import sys
import tempfile
import time
import traceback

import pytest

from . import VERSION, assignment, discovery, isolation, resources, results
from . import clock as clock_mod
from . import config as config_mod
from .assembly import assemble
from .plugin import Plugin
from .record import Record
from .submission import find_files, remove_tree, suspicious_files

GRADER_DIR, TESTS_DIR = config_mod.GRADER_DIR, config_mod.TESTS_DIR   # autograder/, autograder/tests/
ROOT_DIR = os.path.dirname(GRADER_DIR)
DEBIAN_DATA = "/usr/share/datasets"        # where Debian's dataset-fashion-mnist puts the files


def utils_path():
    """The handout's utils.py: handout/ in the repository, the root of the students' handout.zip; None for
    an assignment without a helper module (assignment.UTILS)."""
    if assignment.UTILS is None:
        return None
    path = os.path.join(ROOT_DIR, "handout", assignment.UTILS)
    return path if os.path.isfile(path) else os.path.join(ROOT_DIR, assignment.UTILS)


def test_files(stems, kinds):
    """The test modules of ``stems`` in tests/<kind>/, grouped by graded file in the table's order."""
    modules = discovery.test_modules(kinds, TESTS_DIR)
    return [m.path for stem in stems for m in modules if m.stem == stem]


def make_clock(config, files, start):
    """(clock, why its limits are scaled): time_limits.total from ``start`` (the run's time.time()), shared
    among the graded ``files`` as [time_shares] says; per-request limits scaled by the container's CPU quota."""
    t = config["time_limits"]
    deadline = time.monotonic() + float(t["total"]) - (time.time() - start)
    scale, why = clock_mod.cpu_scale(resources.cpu_quota(), t["scale_with_cpu"], t["largest_scale"])
    shares = clock_mod.shares(t["total"], t["file_minimum"], config["time_shares"], files)
    return clock_mod.Clock(t["total"], deadline, shares, scale), why


def protected_paths(options, workdir):
    """Paths the worker must not open or list (the audit hook; as root, file permissions do the same).

    A path holding the worker's own folders (``workdir``) or the interpreter is left out."""
    o = options
    paths = [GRADER_DIR, assignment.FOLDER] + [os.path.join(ROOT_DIR, d)
                                               for d in ("solution", "tests", "build", "dist", "tools")]
    paths += [os.path.abspath(o.results), os.path.abspath(o.submission)]
    paths += list(o.lock) + ["/autograder/source", "/autograder/results", "/autograder/submission",
                             "/autograder/submission_metadata.json", DEBIAN_DATA,
                             f"/proc/{os.getpid()}"]   # the grader's environment and command line
    if o.data_dir:
        paths.append(os.path.abspath(o.data_dir))
    needed = [os.path.realpath(workdir), os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)]
    both = {form for p in paths for form in (os.path.abspath(p), os.path.realpath(p))}   # as given and resolved
    return sorted(p for p in both if not any(n == p or n.startswith(p.rstrip(os.sep) + os.sep) for n in needed))


def worker_memory(config):
    """(MB, why): config limits.memory_mb, or less where the container's memory limit leaves less.

    Asked again at each worker start, so the grader's share is what it holds then (the data
    set is loaded before the first worker starts); limits.reserve_mb covers its passing
    needs, the page cache of the libraries in use and the kernel."""
    limits = config["limits"]
    return resources.worker_memory_mb(limits["memory_mb"], resources.own_rss_mb() or 0, limits["reserve_mb"])


def remove_workdir(workdir):
    """Problems met removing the scratch folders (``workdir``: None, or the run's), for the report; never
    raises."""
    if workdir is None:
        return []
    try:
        return remove_tree(workdir)
    except Exception as exc:  # noqa: BLE001 - nothing in the cleanup may cost the results
        return [f"{workdir}: {type(exc).__name__}: {exc}"]


class Inputs:
    """What the tests read besides the submission, each read once and only when asked for."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._data = None
        self._expected = None

    def data(self):
        """Fashion-MNIST (X_train uint8, y_train, X_test uint8, y_test) from ``data_dir``."""
        if self._data is None:
            if utils_path() is None:
                raise RuntimeError("this assignment has no helper module to load a data set with")
            spec = importlib.util.spec_from_file_location("nnag_shipped_utils", utils_path())
            utils = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(utils)
            self._data = utils.load_mnist_f(data_dir=self.data_dir, allow_download=False)
        return self._data

    def expected_values(self):
        """The public tests' stored expected values (`make fixtures`)."""
        if self._expected is None:
            import numpy as np
            with np.load(os.path.join(TESTS_DIR, "public", "fixtures", "expected.npz"), allow_pickle=False) as npz:
                self._expected = {k: npz[k] for k in npz.files}
        return self._expected


class GradingRun:
    """One submission's grading.  ``options``: grader.run's parsed command line."""

    def __init__(self, options):
        self.options = options
        self.start = time.time()
        self.config = None
        self.files = [f for f in options.files.split(",") if f]
        self.workdir = None
        self.isolation = None
        self.session = None
        self.record = None           # record.Record, from the config on
        self.clock = None
        self.time_scale_why = ""
        self.summary = {}            # run-wide extra_data
        self.output_lines = []
        self.report = None
        self.inputs = Inputs(options.data_dir)

    # -- the pipeline ----------------------------------------------------------------------------------
    def execute(self):
        """Grade and write results.json.  Returns (results, problem): the results written (None when
        nothing could be graded) and a message for the person who started the run, or None."""
        o = self.options
        try:
            self.config = config_mod.load(o.config, o.overrides)
        except config_mod.ConfigError as exc:
            result = results.initial(None, f"The autograder is misconfigured: {exc}")
            results.atomic_write(o.results, result)
            return result, str(exc)
        self.record = Record(self.config)
        self.write(results.initial(self.config, "Grading did not finish. If this message stays, the grader was "
                                                "stopped before the end."))
        if o.lock:
            isolation.lock_down(o.lock)
        unknown = [f for f in self.files if f not in assignment.BY_STEM]
        if unknown:
            return None, f"--files: unknown file(s) {unknown}; choose from {', '.join(assignment.STEMS)}"
        if not os.path.isdir(o.submission):
            msg = f"The submission folder {o.submission} does not exist."
            result = results.initial(self.config, msg)
            self.write(result)
            return result, msg
        self.workdir = tempfile.mkdtemp(prefix="nnag-")
        os.chmod(self.workdir, 0o711)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, self.on_terminate)
        try:
            self.stage()
            self.run_tests()
            result = self.collect(final=True)
        except Exception as exc:  # noqa: BLE001 - the results file must say what happened
            traceback.print_exc()
            result = self.failed(exc)
        finally:
            self.close()
        problems = results.validate(result)
        if problems:
            print("grader: results failed validation: " + "; ".join(problems), file=sys.stderr)
        self.write(result)
        return result, None

    def stage(self):
        """Find the uploaded files, copy them into per-file scratch folders, load the data, open the session."""
        o = self.options
        found, warnings = find_files(o.submission)
        data_dirs = [d for d in (o.data_dir, DEBIAN_DATA) if d]
        self.isolation = iso = isolation.Isolation(self.config, self.workdir, protected_paths(o, self.workdir),
                                                   data_dirs, o.also_writable)
        notes = list(warnings) + iso.prepare(self.files, found, utils_path(), self.config["size_limits"])
        if o.tests != "public":
            try:
                self.inputs.data()        # now, so that every worker's memory limit counts it
            except Exception:  # noqa: BLE001 - a test that needs the data reports the problem
                pass
        memory_mb, memory_why = worker_memory(self.config)
        problem = isolation.check_interpreter(iso)
        if problem:
            raise RuntimeError(f"the worker user cannot run {iso.python}: {problem}. Put the grader's "
                               "virtual environment where that user can read it (see DEVELOPERS.md).")
        from . import session as session_mod
        self.clock, self.time_scale_why = make_clock(self.config, self.files, self.start)
        self.session = session_mod.Session(self.config, iso, self.clock, found=found,
                                           memory=lambda: worker_memory(self.config)[0])
        self.summary = {"files_graded": self.files, "worker_threads": iso.threads,
                        "worker_threads_why": iso.threads_why, "worker_memory_why": memory_why,
                        "total_time_limit": self.config["time_limits"]["total"], "worker_memory_mb": memory_mb,
                        "time_scale": self.clock.scale, "time_scale_why": self.time_scale_why}
        missing = [assignment.file_of(stem).code for stem in self.files
                   if assignment.file_of(stem).code not in found]
        self.output_lines = [f"Autograder {VERSION}."] + [f"Note: {n}" for n in notes]
        if missing:
            self.output_lines.append("Not found in your submission: " + ", ".join(missing))

    def run_tests(self):
        o = self.options
        kinds = ("public", "private") if o.tests == "all" else (o.tests,)
        paths = test_files(self.files, kinds)
        # quiet (the students' runner, the self-tests): no pytest progress line at all
        terminal = ["-p", "no:terminal"] if o.quiet else ["-qq", "--no-header", "--tb=no", "-rN"]
        folder = assignment.FOLDER       # its tests' root: no conftest.py above it is read (the course's: GRADER_DIR)
        args = ["-c", os.path.join(GRADER_DIR, "pytest.ini"), "--rootdir", folder, "--confcutdir", folder,
                "-p", "no:cacheprovider", "-p", "no:warnings", *terminal, *paths]
        if o.keyword:
            args += ["-k", o.keyword]
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        if paths:
            plugin = Plugin(self.record, self.session, self.clock, self.config, o, data=self.inputs.data,
                            expected=self.inputs.expected_values, checkpoint=self.checkpoint)
            pytest.main(args, plugins=[plugin])
        self.session.close()
        self.record.cleanup_notes += [f"cleanup: {p}" for p in remove_workdir(self.workdir)]

    def failed(self, exc):
        """The results after an internal failure: the files graded before it keep their scores."""
        failure = (f"The autograder failed before finishing: {exc}. "
                   "This is not your fault; please tell the instructor.")
        result = None
        if self.session is not None:
            try:
                result = self.collect(final=False)
                result["output"] += "\n" + failure
            except Exception:  # noqa: BLE001
                result = None
        if result is None or not result["tests"]:
            result = results.initial(self.config, failure)
            result["execution_time"] = int(time.time() - self.start)
        return result

    def close(self):
        """Stop every worker and remove the scratch folders; never raises."""
        try:
            if self.session is not None:
                self.session.close()
        except Exception:  # noqa: BLE001 - nothing may stop the final write
            traceback.print_exc()
        if self.isolation is not None:
            self.isolation.release()
        for p in remove_workdir(self.workdir):
            print(f"grader: cleanup: {p}", file=sys.stderr)

    def on_terminate(self, signum, frame):
        """Stopped from outside (e.g. a batch timeout): kill the workers, remove the scratch folder."""
        if self.session is not None:
            self.session.close()
        if self.workdir is not None:
            remove_tree(self.workdir)
        os._exit(128 + signum)

    def write(self, result):
        results.atomic_write(self.options.results, result)

    def checkpoint(self):
        """results.json with every finished file's scores, so a kill keeps them."""
        self.write(self.collect(final=False))

    # -- the results -------------------------------------------------------------------------------------
    @property
    def internal_errors(self):
        """Tracebacks of the grader's own errors in tests, for the person running it (run.py prints them)."""
        return self.record.internal_errors if self.record is not None else []

    def collect(self, final):
        """The results from the record so far; before the end, only the tests that have ended."""
        self.report = self.record.instructor_report(
            suspicious_files(self.options.submission), self.session.events() if self.session is not None else {},
            self.clock, self.time_scale_why)
        return assemble(self.record, None if self.options.no_report else self.report, final, config=self.config,
                        files=self.files, output_lines=self.output_lines, clock=self.clock, summary=self.summary,
                        isolation=self.isolation, smallest_memory_mb=self.session.smallest_memory_mb,
                        elapsed=time.time() - self.start)
