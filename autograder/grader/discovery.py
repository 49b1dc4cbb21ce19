"""The one listing of the grader's tests: which test modules the assignment's tests/ holds
(autograder/tests/ for the course; see assignment.FOLDER), the file of the assignment each grades,
and the test functions in each.

The files are read, never imported.  Everything that needs the list of tests asks
``test_modules``: the grading run (which modules pytest runs), config.toml's ``[weights]`` check
(which keys name a test) and tools/contract.py (which tests a promise may name).  A test module is
``tests/<public|private>/test_<file stem>*.py``; a test is one of its top-level functions named
``test_*`` (pytest's own rule for this package: autograder/pytest.ini).
"""
import ast
import os
from typing import NamedTuple

from . import assignment

TESTS_DIR = os.path.join(assignment.FOLDER, "tests")      # the course's: autograder/tests/
KINDS = ("public", "private")         # tests/public/ ships to students, tests/private/ does not (whether
#                                       Gradescope shows a test's result is its visibility, not its folder)


class Module(NamedTuple):
    kind: str           # "public" or "private"
    name: str           # its file name, test_<file stem>...py
    path: str
    stem: str           # the graded file it tests (assignment.STEMS), or None
    tests: dict         # {test function: first line of its docstring (its name in results.json), else its name}


def stem_of(module_name, stems=None):
    """The graded file a test module belongs to: the longest stem ``s`` of ``stems`` (the assignment's
    by default) with ``module_name`` starting with ``test_<s>``; None when there is none."""
    matches = [s for s in (assignment.STEMS if stems is None else stems) if module_name.startswith(f"test_{s}")]
    return max(matches, key=len) if matches else None


def _tests_of(path):
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=path)
    return {node.name: ((ast.get_docstring(node) or "").strip() or node.name).splitlines()[0]
            for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_modules(kinds=KINDS, folder=None):
    """Every test module of ``folder`` (the assignment's tests/ by default) in ``kinds``' subfolders, in that
    order and by file name; a missing subfolder (handout.zip has no private/) holds none."""
    folder = TESTS_DIR if folder is None else folder
    found = []
    for kind in kinds:
        sub = os.path.join(folder, kind)
        for name in sorted(os.listdir(sub)) if os.path.isdir(sub) else ():
            if name.startswith("test_") and name.endswith(".py"):
                path = os.path.join(sub, name)
                found.append(Module(kind, name, path, stem_of(name), _tests_of(path)))
    return found
