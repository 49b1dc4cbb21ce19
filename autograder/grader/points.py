"""The points of the grader's tests, counted from the tests themselves.

A test's points live in one place: its ``@pytest.mark.weight(n)`` marker (1 without one).  This
module collects the tests with pytest, as the grader does (parametrized tests count once per
parameter), and adds their points up per graded file; ``python -m grader.config`` prints them and
``tools/make_handout.py`` stamps the totals into the documentation.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
from typing import NamedTuple

import pytest

from . import assignment
from .config import GRADER_DIR, TESTS_DIR
from .plugin import MARKERS
from .record import is_private, points_of, stem_of_test

KINDS = ("public", "private")


class Test(NamedTuple):
    nodeid: str
    stem: str       # the graded file it belongs to
    kind: str       # "public" or "private"
    points: float


class _Collector:
    """A pytest plugin that keeps what a --collect-only run found."""

    def __init__(self):
        self.tests, self.errors = [], []

    def pytest_configure(self, config):
        for line in MARKERS:
            config.addinivalue_line("markers", line)

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1:]}")

    def pytest_collection_finish(self, session):
        self.tests = [Test(i.nodeid, stem_of_test(i), "private" if is_private(i) else "public", float(points_of(i)))
                      for i in session.items]


def collect(tests_dir=None):
    """Every test of <tests_dir>/public and /private (default the assignment's tests/) as a Test, in the order
    pytest collects them.  Collected in a fresh interpreter, so that the caller's imported modules and the
    test modules never meet."""
    proc = subprocess.run([sys.executable, "-m", "grader.points", tests_dir or TESTS_DIR], cwd=GRADER_DIR,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"the grader's tests could not be collected: {(proc.stderr or proc.stdout)[-800:]}")
    return [Test(*t) for t in json.loads(proc.stdout)]


def _collect_here(tests_dir):
    folders = [os.path.join(tests_dir, k) for k in KINDS if os.path.isdir(os.path.join(tests_dir, k))]
    collector = _Collector()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = pytest.main(["-c", os.path.join(GRADER_DIR, "pytest.ini"), "--rootdir", assignment.FOLDER,
                            "--confcutdir", assignment.FOLDER, "--collect-only", "-q", "-p", "no:cacheprovider",
                            *folders], plugins=[collector])
    if collector.errors or code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        sys.exit("; ".join(collector.errors) or out.getvalue()[-800:])
    return collector.tests


def totals(tests):
    """{file stem: {"public": points, "private": points, "public_tests": count, "private_tests": count,
    "tests": count}} in the assignment's order, and the whole under "all"."""
    stems = [s for s in assignment.STEMS if any(t.stem == s for t in tests)]
    stems += sorted({t.stem for t in tests} - set(stems))
    out = {}
    for stem in stems + ["all"]:
        mine = [t for t in tests if stem in ("all", t.stem)]
        out[stem] = {kind: sum(t.points for t in mine if t.kind == kind) for kind in KINDS}
        out[stem].update({f"{kind}_tests": sum(t.kind == kind for t in mine) for kind in KINDS}, tests=len(mine))
    return out


def describe(tests):
    """The points table ``python -m grader.config`` prints."""
    lines = ["[points]   counted from the tests' @pytest.mark.weight markers (default 1)"]
    for stem, t in totals(tests).items():
        lines.append(f"  {stem:<14} {t['public'] + t['private']:>5g} points in {t['tests']:>2} tests "
                     f"(public {t['public']:g}, private {t['private']:g})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(_collect_here(sys.argv[1])))
