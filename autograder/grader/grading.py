"""One grading run: the object that owns everything from a submission to its results.json.

``GradingRun(options).execute()`` is all of grader.run's work after the command line.  The
run is the pytest plugin (``pytest.main(plugins=[run])``): its fixtures hand tests the
student's files, the config, the data and a ``feedback`` object, and its hooks turn each
test into one record.  Nothing lives in module globals: a second run in the same process
starts from nothing.

A TA adds a test by writing one function in autograder/tests/public/ or
autograder/tests/hidden/, in the module of the file it grades (``test_<file stem>*.py``),
optionally with markers:

    @pytest.mark.weight(2)               points (default 1; config [weights] "<module>::<test>" overrides)
    @pytest.mark.number("1.4")           Gradescope test number (default: automatic)
    @pytest.mark.visibility("visible")   default: by directory (see config [grading])
    @pytest.mark.trains                  calls the student's training code on a few images (run_public_tests.py
                                         --no-training leaves it out)
    @pytest.mark.training                trains on the full data, in a fresh worker (skippable with
                                         --skip-training)

Fixtures: one per graded file, named by its stem (see assignment.py; a session.StudentFile),
``config``, ``fmnist_data`` (uint8 images and labels, loaded once), ``expected`` (the public
tests' stored values) and ``feedback`` (a Feedback: notes, the per-class table, the accuracy
verdict, extra_data, the instructor report).
"""
import importlib.util
import os
import signal
import sys
import tempfile
import time
import traceback

import numpy as np
import pytest

from . import VERSION, assignment, isolation, resources, results
from . import clock as clock_mod
from . import config as config_mod
from .checks import GradeFailure, check_threshold, class_report
from .submission import find_files, remove_tree, suspicious_files

GRADER_DIR, TESTS_DIR = config_mod.GRADER_DIR, config_mod.TESTS_DIR   # autograder/, autograder/tests/
ROOT_DIR = os.path.dirname(GRADER_DIR)
DEBIAN_DATA = "/usr/share/datasets"        # where Debian's dataset-fashion-mnist puts the files
MARKERS = ("weight(points): points of this test", "number(text): Gradescope test number",
           "visibility(v): visible, hidden, after_due_date or after_published",
           "file(stem): the submitted file this test grades",
           "training: trains or evaluates on the full data (run.py --skip-training leaves it out); runs after "
           "every quick test, cheapest first",
           "cost(seconds): a training test's expected seconds at one CPU (the run order: cheapest first)",
           "trains: calls the student's training code (run_public_tests.py --no-training leaves it out)")


def utils_path():
    """The handout's utils.py: handout/ in the repository, the root of the students' handout.zip."""
    path = os.path.join(ROOT_DIR, "handout", assignment.UTILS)
    return path if os.path.isfile(path) else os.path.join(ROOT_DIR, assignment.UTILS)


def file_order(stem):
    """Gradescope's major test number of a file: its place in the assignment table (9: general)."""
    return assignment.STEMS.index(stem) + 1 if stem in assignment.BY_STEM else 9


def test_files(stems, kinds):
    """The test modules of ``stems`` in tests/<kind>/, grouped by graded file in the table's order."""
    dirs = [os.path.join(TESTS_DIR, kind) for kind in kinds if os.path.isdir(os.path.join(TESTS_DIR, kind))]
    return [os.path.join(d, f) for stem in stems for d in dirs for f in sorted(os.listdir(d))
            if f.startswith(f"test_{stem}") and f.endswith(".py")]


class Feedback:
    """What one test adds to its own record besides the verdict (the ``feedback`` fixture)."""

    def __init__(self, run):
        self.run = run
        self.notes = []
        self.trailer = None
        self.output_format = None
        self.extra_data = {}

    def note(self, text):
        """A line of the test's output, shown whether it passes or fails."""
        self.notes.append(text)

    def details(self, output_format=None, **extra):
        """Gradescope's output_format (e.g. "md") and entries of the test's extra_data."""
        if output_format:
            self.output_format = output_format
        self.extra_data.update(extra)

    def instructor(self, text):
        """A line of the instructor-only report (a hidden 0-point test); never changes a score."""
        self.run.instructor_notes.append(text)

    def leaderboard(self, name, value, order="desc"):
        self.run.leaderboard.append({"name": name, "value": value, "order": order})

    def class_table(self, predicted, labels):
        """The per-class accuracy table and most frequent confusions, after the verdict (markdown), with
        the same numbers as integers in extra_data; config [feedback] turns it off or sets how many
        confusions.  No student code runs here."""
        feedback = self.run.config["feedback"]
        if feedback["per_class"]:
            text, extra = class_report(predicted, labels, feedback["confusions"])
            self.trailer = "Accuracy per class (grader-computed):\n\n" + text
            self.details("md", **extra)

    def accuracy(self, stem, predicted, labels, what, detail, relabel=None):
        """An accuracy test's verdict from the grader's own predictions: the accuracy and the file's
        threshold go into extra_data, the per-class table after the verdict; fails below the threshold
        (partial credit as config [partial_credit] says).  Returns the accuracy.

        ``relabel`` (refmath.Relabelling): the model was trained on the grader's own labelling and
        ``predicted`` are in that numbering; they are mapped back to the true classes here.  Weights that
        predict the true numbers instead did not learn from the targets they were given: the instructor
        report says so."""
        predicted, labels = np.asarray(predicted), np.asarray(labels)
        if relabel is not None:
            as_given = float(np.mean(predicted == relabel.labels(labels)))
            as_true = float(np.mean(predicted == labels))
            if as_true > max(as_given, self.run.config["cutoffs"]["untrained_weights"]):
                self.instructor(f"{stem}: the trained weights predict the true class numbers ({as_true:.3f}), not "
                                f"the grader's relabelled ones they were trained on ({as_given:.3f}): the weights "
                                "do not come from train() on the given data")
            predicted = relabel.true_classes(predicted)
        acc = float(np.mean(predicted == labels))
        threshold = self.run.config["thresholds"][stem]
        self.details(accuracy=round(acc, 6), threshold=threshold, evaluated_images=int(len(labels)))
        self.class_table(predicted, labels)
        self.note(check_threshold(acc, threshold, what, self.run.config, detail))
        return acc

    def finish(self, rec):
        """Fill the record's output: the notes, then the verdict's message, then the trailer."""
        parts = self.notes + ([rec["output"]] if rec["output"] else [])
        if self.extra_data:
            rec.setdefault("extra_data", {}).update(self.extra_data)
        if self.output_format:
            rec["output_format"] = self.output_format
        trailer = [self.trailer] if self.trailer else []
        if rec.get("output_format") == "md":     # a paragraph per part; a line break inside one stays a break
            rec["output"] = "\n\n".join([results.md_escape(p).replace("\n", "  \n") for p in parts] + trailer)
        else:
            rec["output"] = "\n".join(parts + trailer)


def _file_fixture(stem):
    @pytest.fixture(name=stem)
    def fixture(self):
        return self.session.file(stem)
    fixture.__doc__ = f"{stem}.py of the submission, running in its own worker (session.StudentFile)"
    return fixture


def _marker_arg(item, name, default):
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker and marker.args else default


def file_of(item):
    """The graded file a test belongs to: its file marker, else its module's name (test_<stem>...)."""
    stem = _marker_arg(item, "file", None)
    if stem:
        return stem
    module = os.path.basename(str(item.fspath))
    return next((s for s in assignment.STEMS if module.startswith(f"test_{s}")), "general")


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
        self.records = {}            # nodeid -> record, in the order tests ran
        self.feedback_of = {}        # nodeid -> Feedback
        self.leaderboard = []
        self.instructor_notes = []
        self.internal_errors = []
        self.cleanup_notes = []
        self.left_out = 0
        self.active_file = None      # stem of the running test's file
        self.clock = None
        self.run_order = []          # nodeids in the order they run (quick tests first, then training by cost)
        self.last_of_file = {}       # stem -> nodeid of its last test in that order
        self.done = set()            # nodeids whose test has ended
        self.declared = []           # nodeids in the order the test modules declare them (the numbering)
        self.numbers = {}            # nodeid -> Gradescope number, fixed at collection whatever the run order
        self.training_tests = set()
        self.file_of_test = {}
        self.time_scale_why = ""
        self.requests_at_start = 0
        self.summary = {}            # run-wide extra_data
        self.output_lines = []
        self.report = None
        self._data = None
        self._expected = None

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
        self.isolation = iso = isolation.Isolation(self.config, self.workdir, self.protected_paths(), data_dirs,
                                                   o.also_writable)
        notes = list(warnings) + iso.prepare(self.files, found, utils_path(), self.config["size_limits"])
        if o.tests != "public":
            try:
                self.data()               # now, so that every worker's memory limit counts it
            except Exception:  # noqa: BLE001 - a test that needs the data reports the problem
                pass
        memory_mb, memory_why = self.worker_memory()
        problem = iso.check_interpreter()
        if problem:
            raise RuntimeError(f"the worker user cannot run {iso.python}: {problem}. Put the grader's "
                               "virtual environment where that user can read it (see DEVELOPERS.md).")
        from . import session as session_mod
        self.clock = self.make_clock()
        self.session = session_mod.Session(self.config, iso, self.clock, found=found,
                                           memory=lambda: self.worker_memory()[0])
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
        kinds = ("public", "hidden") if o.tests == "all" else (o.tests,)
        paths = test_files(self.files, kinds)
        # quiet (the students' runner, the self-tests): no pytest progress line at all
        terminal = ["-p", "no:terminal"] if o.quiet else ["-qq", "--no-header", "--tb=no", "-rN"]
        args = ["-c", os.path.join(GRADER_DIR, "pytest.ini"), "--rootdir", GRADER_DIR, "--confcutdir", GRADER_DIR,
                "-p", "no:cacheprovider", "-p", "no:warnings", *terminal, *paths]
        if o.keyword:
            args += ["-k", o.keyword]
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        if paths:
            pytest.main(args, plugins=[self])
        self.session.close()
        self.cleanup_notes += [f"cleanup: {p}" for p in self.remove_workdir()]

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
        for p in self.remove_workdir():
            print(f"grader: cleanup: {p}", file=sys.stderr)

    def remove_workdir(self):
        """Problems met removing the scratch folders, for the report; never raises."""
        if self.workdir is None:
            return []
        try:
            return remove_tree(self.workdir)
        except Exception as exc:  # noqa: BLE001 - nothing in the cleanup may cost the results
            return [f"{self.workdir}: {type(exc).__name__}: {exc}"]

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

    # -- what the run needs ----------------------------------------------------------------------------
    def make_clock(self):
        """The run's clock: time_limits.total from the run's start, shared among the graded files as
        [time_shares] says; per-request limits scaled by the container's CPU quota."""
        t = self.config["time_limits"]
        deadline = time.monotonic() + float(t["total"]) - (time.time() - self.start)
        scale, self.time_scale_why = clock_mod.cpu_scale(resources.cpu_quota(), t["scale_with_cpu"],
                                                         t["largest_scale"])
        shares = clock_mod.shares(t["total"], t["file_minimum"], self.config["time_shares"], self.files)
        return clock_mod.Clock(t["total"], deadline, shares, scale)

    def protected_paths(self):
        """Paths the worker must not open or list (the audit hook; as root, file permissions do the same).

        A path holding the worker's own folders or the interpreter is left out."""
        o = self.options
        paths = [GRADER_DIR] + [os.path.join(ROOT_DIR, d) for d in ("solution", "tests", "build", "dist", "tools")]
        paths += [os.path.abspath(o.results), os.path.abspath(o.submission)]
        paths += list(o.lock) + ["/autograder/source", "/autograder/results", "/autograder/submission",
                                 "/autograder/submission_metadata.json", DEBIAN_DATA,
                                 f"/proc/{os.getpid()}"]   # the grader's environment and command line
        if o.data_dir:
            paths.append(os.path.abspath(o.data_dir))
        needed = [os.path.realpath(self.workdir), os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)]
        both = {form for p in paths for form in (os.path.abspath(p), os.path.realpath(p))}   # as given and resolved
        return sorted(p for p in both if not any(n == p or n.startswith(p.rstrip(os.sep) + os.sep) for n in needed))

    def worker_memory(self):
        """(MB, why): config limits.memory_mb, or less where the container's memory limit leaves less.

        Asked again at each worker start, so the grader's share is what it holds then (the data
        set is loaded before the first worker starts); limits.reserve_mb covers its passing
        needs, the page cache of the libraries in use and the kernel."""
        limits = self.config["limits"]
        return resources.worker_memory_mb(limits["memory_mb"], resources.own_rss_mb() or 0, limits["reserve_mb"])

    def data(self):
        """Fashion-MNIST (X_train uint8, y_train, X_test uint8, y_test), read once and only when asked for."""
        if self._data is None:
            spec = importlib.util.spec_from_file_location("nnag_shipped_utils", utils_path())
            utils = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(utils)
            self._data = utils.load_mnist_f(data_dir=self.options.data_dir, allow_download=False)
        return self._data

    def expected_values(self):
        """The public tests' stored expected values (`make fixtures`), read once."""
        if self._expected is None:
            import numpy as np
            with np.load(os.path.join(TESTS_DIR, "public", "fixtures", "expected.npz"), allow_pickle=False) as npz:
                self._expected = {k: npz[k] for k in npz.files}
        return self._expected

    # -- fixtures ----------------------------------------------------------------------------------------
    @pytest.fixture(name="config")
    def config_fixture(self):
        return self.config

    @pytest.fixture(name="fmnist_data", scope="session")
    def fmnist_data(self):
        """(X_train uint8, y_train, X_test uint8, y_test), loaded once by the grader."""
        return self.data()

    @pytest.fixture(name="expected")
    def expected(self):
        """The stored expected values for public tests (generated by `make fixtures`)."""
        return self.expected_values()

    @pytest.fixture(name="feedback")
    def feedback(self, request):
        """This test's Feedback (notes, per-class table, accuracy verdict, extra_data, instructor report)."""
        return self.feedback_of.setdefault(request.node.nodeid, Feedback(self))

    # -- pytest hooks ------------------------------------------------------------------------------------
    def pytest_configure(self, config):
        for line in MARKERS:
            config.addinivalue_line("markers", line)

    def pytest_collection_modifyitems(self, session, config, items):
        """--skip-training STEMS: leave out those files' training tests (the red-team suite's spill-over check);
        --no-training: leave out every test marked training or trains (a student's quick local run)."""
        skip = [f for f in self.options.skip_training.split(",") if f]
        no_training = self.options.no_training

        def left_out(item):
            if item.get_closest_marker("training"):
                return no_training or file_of(item) in skip
            return bool(no_training and item.get_closest_marker("trains"))

        keep = [i for i in items if not left_out(i)]
        self.left_out = len(items) - len(keep)
        if len(keep) != len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        self.declared = [i.nodeid for i in keep]
        self.numbers = auto_numbers(keep)
        items[:] = run_order(keep)
        self.run_order = [i.nodeid for i in items]
        self.training_tests = {i.nodeid for i in items if i.get_closest_marker("training")}
        self.file_of_test = {i.nodeid: file_of(i) for i in items}
        self.last_of_file = {file_of(i): i.nodeid for i in items}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """Everything a test does is charged to its file's share of the time; its file's last test
        gives what the file did not use to the files after it."""
        stem = file_of(item)
        with self.clock.charging(stem):
            yield
        self.done.add(item.nodeid)
        if self.last_of_file.get(stem) == item.nodeid:
            self.clock.finish(stem)
        if item.get_closest_marker("training") or nextitem is None or file_of(nextitem) != stem:
            self.checkpoint()

    def pytest_runtest_setup(self, item):
        stem = file_of(item)
        previous, self.active_file = self.active_file, stem
        if previous and previous != stem:
            self.session.file(previous).close()          # one worker's memory at a time
        if item.get_closest_marker("training") and stem in assignment.BY_STEM:
            # a fresh worker: what earlier tests left in memory (figures, optimiser
            # modules, allocator caches: 75 MB measured) does not count against the limit
            self.session.file(stem).close()
        self.requests_at_start = self.session.requests
        if not self.clock.has_time(stem):                # the file's time is used up: fail at once
            raise clock_mod.OutOfTime(self.clock.refusal(stem))

    def pytest_runtest_teardown(self, item):
        stem = file_of(item)
        if stem in self.session.files:
            self.session.file(stem).forget()             # the next test starts from a worker holding nothing

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        rec = self.records.get(item.nodeid) or self.new_record(item)
        if report.when == "call":
            rec.setdefault("extra_data", {})["seconds"] = round(report.duration, 2)
            # the requests this test sent to student code (not the worker's start-up)
            rec["extra_data"]["worker_requests"] = self.session.requests - self.requests_at_start
        if report.when == "teardown":
            self.feedback_of.get(item.nodeid, Feedback(self)).finish(rec)
        if (report.failed or report.skipped) and rec["status"] == "passed":   # the first failure counts
            if call.excinfo is not None:
                if isinstance(call.excinfo.value, clock_mod.OutOfTime):
                    self.clock.lose(rec["file"], rec["test"])
                message, fraction = self.message(call.excinfo)
            else:
                message, fraction = str(report.longrepr), 0.0
            rec.update(status="failed", output=message, score=round(rec["max_score"] * fraction, 4))

    def new_record(self, item):
        hidden = is_hidden(item)
        grading = self.config["grading"]
        default_vis = grading["hidden_visibility"] if hidden else grading["public_visibility"]
        weight = config_mod.weight_of(self.config, os.path.basename(str(item.fspath)), item.name,
                                      _marker_arg(item, "weight", 1))
        doc = (item.function.__doc__ or "").strip().splitlines()
        rec = self.records[item.nodeid] = {
            "nodeid": item.nodeid, "test": item.name, "file": file_of(item),
            "name": doc[0] if doc else item.name.replace("_", " "),
            "number": _marker_arg(item, "number", None) or self.numbers.get(item.nodeid),
            "max_score": float(weight),
            "visibility": _marker_arg(item, "visibility", default_vis), "kind": "hidden" if hidden else "public",
            "status": "passed", "score": float(weight), "output": "",
        }
        return rec

    def message(self, excinfo):
        """(message for the student, fraction of the points) of a failed test."""
        exc = excinfo.value
        if isinstance(exc, GradeFailure):
            return str(exc), getattr(exc, "fraction", 0.0)
        if isinstance(exc, AssertionError):
            return str(exc) or "a check failed", 0.0
        if isinstance(exc, pytest.fail.Exception):
            return str(exc.msg), 0.0
        if isinstance(exc, pytest.skip.Exception):
            return f"this test did not run: {exc.msg}", 0.0
        self.internal_errors.append("".join(traceback.format_exception(exc)))
        return (f"The grader hit an internal error in this test ({type(exc).__name__}). This is not your fault; "
                "the instructor has been told."), 0.0

    # -- the results -------------------------------------------------------------------------------------
    def instructor_report(self):
        """A 0-point, hidden test whose output lists every limit hit and refused or telling action."""
        lines = []
        upload_hits = suspicious_files(self.options.submission)
        if upload_hits:
            lines.append("upload: never loaded, but shipped: " + ", ".join(upload_hits))
        for stem, events in (self.session.events() if self.session is not None else {}).items():
            lines += [f"{stem}: {e}" for e in events]
        lines += [f"check: {n}" for n in self.instructor_notes + self.cleanup_notes]
        if self.clock is not None:
            lines += [f"clock: {stem} lost {len(lost)} test(s) to the clock: {', '.join(lost)}"
                      for stem, lost in self.clock.lost.items()]
        output = "\n".join(lines) if lines else "Nothing to report."
        if self.clock is not None:
            output += "\n\n" + self.time_report()
        return {"nodeid": "instructor-report", "test": "instructor_report", "file": "general",
                "name": results.REPORT_NAME, "number": "0.1", "max_score": 0.0, "visibility": "hidden",
                "kind": "hidden", "status": "failed" if lines else "passed", "score": 0.0,
                "output": output, "tags": ["general", "hidden"],
                "extra_data": {"problems": lines, "time": self.clock.describe() if self.clock else {},
                               "run_order": list(self.run_order)}}

    def time_report(self):
        """The report's time section: each file's share and use, and the order the tests ran in."""
        c = self.clock
        lines = [f"Time: each file's share of the {c.total:g} s total and what it used (per-request limits x"
                 f"{c.scale:g}: {self.time_scale_why}):"]
        for stem, d in c.describe().items():
            lost = f"; lost to the clock: {', '.join(d['lost_to_clock'])}" if d["lost_to_clock"] else ""
            lines.append(f"  {stem}: used {d['used_s']:.0f} s of its {d['share_s']:.0f} s share{lost}")
        training = [n.split("/")[-1] for n in self.run_order if n in self.training_tests]
        lines.append("Run order: every file's quick tests in file order, then the training tests, cheapest first: "
                     + (", ".join(training) or "none"))
        return "\n".join(lines)

    def collect(self, final):
        """The results from the records so far; before the end, only the tests that have ended."""
        done = [r for r in self.records.values() if final or r["nodeid"] in self.done]
        self.report = self.instructor_report()
        declared = {nodeid: i for i, nodeid in enumerate(self.declared)}
        records = number_tests(sorted(done, key=lambda r: (file_order(r["file"]), r["kind"] == "hidden",
                                                           declared.get(r["nodeid"], len(declared)))))
        if not self.options.no_report:
            records.append(self.report)
        lines = list(self.output_lines)
        unfinished = {self.file_of_test.get(n) for n in self.run_order if n not in self.done}
        pending = [f for f in self.files if f in unfinished or not self.run_order]
        if not final:
            lines.append("Grading did not finish: the autograder was stopped before the last tests of "
                         + ", ".join(assignment.file_of(f).code for f in pending) + ". The scores below are those "
                         "of the tests that finished.")
        out_of_time = bool(self.clock and self.clock.lost)
        if final and out_of_time:
            lines.append("Some tests ran out of time: "
                         + "; ".join(f"{assignment.file_of(s).code}: {len(t)}" for s, t in self.clock.lost.items())
                         + ". The grader gives each file a share of its total time; the other files keep theirs.")
        extra = dict(self.summary, isolation=self.isolation.describe(), internal_errors=len(self.internal_errors),
                     tests_left_out=self.left_out, partial=not final, out_of_time=out_of_time,
                     time_per_file=self.clock.describe() if self.clock else {})
        extra["worker_memory_mb"] = self.session.smallest_memory_mb or extra.get("worker_memory_mb")
        return results.build(records, self.config, time.time() - self.start, "\n".join(lines),
                             leaderboard=self.leaderboard, extra=extra)


for _f in assignment.FILES:                  # one fixture per graded file, named by its stem
    setattr(GradingRun, _f.stem, _file_fixture(_f.stem))
del _f


def cost_of(item):
    """A training test's expected seconds at one CPU (its cost marker; 0 when it has none)."""
    return float(_marker_arg(item, "cost", 0))


def run_order(items):
    """Every quick test first, in file and module order; then the training tests, cheapest first
    (ties in file order).  Deterministic: the same tests always run in the same order."""
    position = {id(item): i for i, item in enumerate(items)}

    def key(item):
        training = item.get_closest_marker("training") is not None
        return (training, cost_of(item) if training else 0.0, file_order(file_of(item)) if training else 0,
                position[id(item)])
    return sorted(items, key=key)


def auto_numbers(items):
    """{nodeid: "<file>.<n>"} for the tests without a number marker: by file, public before hidden, in the
    order the modules declare them (not the run order, so the numbers never depend on it)."""
    numbers, counters = {}, {}
    declared = {id(item): i for i, item in enumerate(items)}
    for item in sorted(items, key=lambda i: (file_order(file_of(i)), is_hidden(i), declared[id(i)])):
        if _marker_arg(item, "number", None) is None:
            major = file_order(file_of(item))
            counters[major] = counters.get(major, 0) + 1
            numbers[item.nodeid] = f"{major}.{counters[major]}"
    return numbers


def is_hidden(item):
    return os.sep + "hidden" + os.sep in str(item.fspath)


def number_tests(records):
    """Each record's number (auto_numbers unless a test has its own), parameters in the name, tags."""
    records = [dict(rec) for rec in records]
    for rec in records:
        if "[" in rec["test"] and "[" not in rec["name"]:
            rec["name"] += " [" + rec["test"].split("[", 1)[1]
        rec["tags"] = [rec["file"], rec["kind"]]
    return records
