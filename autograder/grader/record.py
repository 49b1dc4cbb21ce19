"""The record of one run: a record per test, its number, its verdict, and the instructor report.

``Record`` keeps what happened, test by test, in the order the tests ran; the numbers are fixed
when the tests are collected (auto_numbers), whatever order they then run in.  What a test's
markers and place say (its file, points, number, visibility, public or private) is read here, once,
when its record is made.  The instructor report gathers what the run noted: the uploads that were
never loaded, each file's events (session.StudentFile.event), the tests' own notes
(Feedback.instructor), the clean-up's problems and the time each file used.
"""
import os
import traceback

import pytest

from . import assignment, results
from .checks import GradeFailure


def marker_arg(item, name, default):
    """The first argument of the test's closest ``name`` marker, else ``default``."""
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker and marker.args else default


def points_of(item):
    """A test's points: its weight marker, else 1."""
    return marker_arg(item, "weight", 1)


def stem_of_test(item):
    """The graded file a test belongs to: its file marker, else its module's name (test_<stem>...)."""
    stem = marker_arg(item, "file", None)
    if stem:
        return stem
    module = os.path.basename(str(item.fspath))
    return next((s for s in assignment.STEMS if module.startswith(f"test_{s}")), "general")


def is_private(item):
    """A test of tests/private/ (not shipped to students; whether Gradescope shows it is its visibility)."""
    return os.path.basename(os.path.dirname(str(item.fspath))) == "private"


def file_order(stem):
    """Gradescope's major test number of a file: its place in the assignment table (9: general)."""
    return assignment.STEMS.index(stem) + 1 if stem in assignment.BY_STEM else 9


def auto_numbers(items):
    """{nodeid: "<file>.<n>"} for the tests without a number marker: by file, public before private, in the
    order the modules declare them (not the run order, so the numbers never depend on it)."""
    numbers, counters = {}, {}
    declared = {id(item): i for i, item in enumerate(items)}
    for item in sorted(items, key=lambda i: (file_order(stem_of_test(i)), is_private(i), declared[id(i)])):
        if marker_arg(item, "number", None) is None:
            major = file_order(stem_of_test(item))
            counters[major] = counters.get(major, 0) + 1
            numbers[item.nodeid] = f"{major}.{counters[major]}"
    return numbers


def number_tests(records):
    """Each record's number (auto_numbers unless a test has its own), parameters in the name, tags."""
    records = [dict(rec) for rec in records]
    for rec in records:
        if "[" in rec["test"] and "[" not in rec["name"]:
            rec["name"] += " [" + rec["test"].split("[", 1)[1]
        rec["tags"] = [rec["file"], rec["kind"]]
    return records


class Record:
    """What happened in one run.  ``config``: the run's config (visibilities; Feedback reads the rest)."""

    def __init__(self, config):
        self.config = config
        self.records = {}            # nodeid -> record, in the order tests ran
        self.feedback_of = {}        # nodeid -> Feedback
        self.leaderboard = []
        self.instructor_notes = []
        self.internal_errors = []
        self.cleanup_notes = []
        self.left_out = 0
        self.run_order = []          # nodeids in the order they run (quick tests first, then training by cost)
        self.done = set()            # nodeids whose test has ended
        self.declared = []           # nodeids in the order the test modules declare them (the numbering)
        self.numbers = {}            # nodeid -> Gradescope number, fixed at collection whatever the run order
        self.training_tests = set()
        self.file_of_test = {}

    def collected(self, declared, ordered, left_out):
        """The tests that will run: ``declared`` in the modules' order (numbered now), ``ordered`` in the run's."""
        self.left_out = left_out
        self.declared = [i.nodeid for i in declared]
        self.numbers = auto_numbers(declared)
        self.run_order = [i.nodeid for i in ordered]
        self.training_tests = {i.nodeid for i in ordered if i.get_closest_marker("training")}
        self.file_of_test = {i.nodeid: stem_of_test(i) for i in ordered}

    def of(self, item):
        """The test's record, made (passed, full points) the first time it is asked for."""
        return self.records.get(item.nodeid) or self.new_record(item)

    def new_record(self, item):
        private = is_private(item)
        grading = self.config["grading"]
        default_vis = grading["private_visibility"] if private else grading["public_visibility"]
        weight = points_of(item)
        doc = (item.function.__doc__ or "").strip().splitlines()
        rec = self.records[item.nodeid] = {
            "nodeid": item.nodeid, "test": item.name, "file": stem_of_test(item),
            "name": doc[0] if doc else item.name.replace("_", " "),
            "number": marker_arg(item, "number", None) or self.numbers.get(item.nodeid),
            "max_score": float(weight),
            "visibility": marker_arg(item, "visibility", default_vis), "kind": "private" if private else "public",
            "status": "passed", "score": float(weight), "output": "",
            # the test's stable id for the tools (tools/contract.py's ids, with any [parameters]): the name students
            # see is its docstring, which a TA may reword
            "extra_data": {"test_id": f"{'private' if private else 'public'}/{os.path.basename(str(item.fspath))}"
                                      f"::{item.name}"},
        }
        return rec

    def verdict(self, exc):
        """(message for the student, fraction of the points) of a test that raised ``exc``; anything but a
        failure the tests mean is an internal error, kept for the person running the grader."""
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

    def ended(self, final):
        """The records of the tests that have ended (every record when ``final``), numbered, in Gradescope's
        order: by file, public before private, as the modules declare them."""
        done = [r for r in self.records.values() if final or r["nodeid"] in self.done]
        declared = {nodeid: i for i, nodeid in enumerate(self.declared)}
        return number_tests(sorted(done, key=lambda r: (file_order(r["file"]), r["kind"] == "private",
                                                        declared.get(r["nodeid"], len(declared)))))

    def instructor_report(self, upload_hits, events, clock, time_scale_why):
        """A 0-point, hidden test whose output lists every limit hit and refused or telling action.

        ``upload_hits``: the uploads never loaded (submission.suspicious_files); ``events``: {file stem:
        lines} (session.Session.events); ``clock``: the run's clock, or None before there was one."""
        lines = []
        if upload_hits:
            lines.append("upload: never loaded, but shipped: " + ", ".join(upload_hits))
        for stem, file_events in events.items():
            lines += [f"{stem}: {e}" for e in file_events]
        lines += [f"check: {n}" for n in self.instructor_notes + self.cleanup_notes]
        if clock is not None:
            lines += [f"clock: {stem} lost {len(lost)} test(s) to the clock: {', '.join(lost)}"
                      for stem, lost in clock.lost.items()]
        output = "\n".join(lines) if lines else "Nothing to report."
        if clock is not None:
            output += "\n\n" + self.time_report(clock, time_scale_why)
        return {"nodeid": "instructor-report", "test": "instructor_report", "file": "general",
                "name": results.REPORT_NAME, "number": "0.1", "max_score": 0.0, "visibility": "hidden",
                "kind": "private", "status": "failed" if lines else "passed", "score": 0.0,
                "output": output, "tags": ["general", "private"],
                "extra_data": {"problems": lines, "time": clock.describe() if clock else {},
                               "run_order": list(self.run_order)}}

    def time_report(self, clock, time_scale_why):
        """The report's time section: each file's share and use, and the order the tests ran in."""
        c = clock
        lines = [f"Time: each file's share of the {c.total:g} s total and what it used (per-request limits x"
                 f"{c.scale:g}: {time_scale_why}):"]
        for stem, d in c.describe().items():
            lost = f"; lost to the clock: {', '.join(d['lost_to_clock'])}" if d["lost_to_clock"] else ""
            lines.append(f"  {stem}: used {d['used_s']:.0f} s of its {d['share_s']:.0f} s share{lost}")
        training = [n.split("/")[-1] for n in self.run_order if n in self.training_tests]
        lines.append("Run order: every file's quick tests in file order, then the training tests, cheapest first: "
                     + (", ".join(training) or "none"))
        return "\n".join(lines)
