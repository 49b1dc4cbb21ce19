"""The grader carries over to another assignment (issue 28, item 6).

tests/second_assignment/ is a small assignment of its own, one function of a neighbouring homework: its
table (assignment.toml), config.toml, contract.toml, seeded bugs (mutants.toml), the reference
(solution/), the stub generated from it (handout/) and a public and a private test module written with
grader.kit.  The course's grader grades it through its usual command line, told only the folder
(``--assignment``); no file of the grader, its config or its tests names it, and the course's zips hold
none of it.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import contract  # noqa: E402
from grade_folder import AUTOGRADER, grade_folder  # noqa: E402
from grader import run as run_mod  # noqa: E402
from grader.results import REPORT_NAME, validate  # noqa: E402
from test_structure import kit_problems  # noqa: E402

SECOND = os.path.join(ROOT, "tests", "second_assignment")
with open(os.path.join(SECOND, "assignment.toml"), "rb") as _fh:
    TABLE = tomllib.load(_fh)["file"]
STEMS = [f["stem"] for f in TABLE]
with open(os.path.join(SECOND, "mutants.toml"), "rb") as _fh:
    MUTANTS = tomllib.load(_fh)["mutant"]
PROMISES = contract.load(os.path.join(SECOND, "contract.toml"))
TESTS = contract.test_functions(os.path.join(SECOND, "tests"))      # "<kind>/<module>::<function>": its name


def grade(folder, results):
    """The course's grader (python -m grader.run, as make grade and run_autograder call it) on ``folder``,
    pointed at the second assignment; the tests that carry points."""
    result, _ = grade_folder(folder, results, "--assignment", SECOND, python=PYTHON, timeout=300)
    assert validate(result) == [], validate(result)
    assert result["extra_data"]["files_graded"] == STEMS
    return [t for t in result["tests"] if t["name"] != REPORT_NAME], result


def id_of(test):
    """The test function a results.json entry comes from, without its [parameters]."""
    return re.sub(r"\[.*\]$", "", test["extra_data"]["test_id"])


def submission(tmp_path, name, source_folder, mutant=None):
    """A folder holding the second assignment's files from ``source_folder``; a mutant's edits [find, replace]
    applied to its file, each once."""
    folder = tmp_path / name
    folder.mkdir()
    for f in TABLE:
        text = open(os.path.join(source_folder, f"{f['stem']}.py"), encoding="utf-8").read()
        for find, replace in mutant["edits"] if mutant and mutant["file"] == f"{f['stem']}.py" else ():
            assert text.count(find) == 1, f"{name}: {find!r}"
            text = text.replace(find, replace)
        (folder / f"{f['stem']}.py").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.duration(3)     # a grading costs about 1 s (no torch, no data set)
def test_the_reference_gets_full_marks_on_every_test(tmp_path):
    graded, result = grade(submission(tmp_path, "reference", os.path.join(SECOND, "solution")),
                           tmp_path / "reference.json")
    assert {id_of(t) for t in graded} == set(TESTS)                     # every test of its folder ran
    assert {tuple(t["tags"]) for t in graded} == {(s, k) for s in STEMS for k in ("public", "private")}
    assert [(t["name"], t["output"]) for t in graded if t["status"] != "passed"] == []
    assert result["score"] == sum(t["max_score"] for t in graded) >= len(TESTS)
    with open(os.path.join(SECOND, "config.toml"), "rb") as fh:
        thresholds = tomllib.load(fh)["thresholds"]
    accuracy = [t for t in graded if "accuracy" in t.get("extra_data", {})]
    assert accuracy and all(t["extra_data"]["threshold"] == thresholds[t["tags"][0]] for t in accuracy)
    assert "class_names" not in json.dumps(accuracy)                  # its config turns the per-class table off


@pytest.mark.duration(3)     # a grading costs about 1 s (no torch, no data set)
def test_the_untouched_stub_scores_zero_on_every_test(tmp_path):
    graded, result = grade(submission(tmp_path, "stub", os.path.join(SECOND, "handout")), tmp_path / "stub.json")
    assert {id_of(t) for t in graded} == set(TESTS)
    assert all(t["score"] == 0 and "NotImplementedError" in t["output"] for t in graded), graded
    assert result["score"] == 0


@pytest.mark.duration(5)     # three gradings of about 1 s each, two at a time
def test_each_mutant_loses_points_in_exactly_its_promises_tests(tmp_path):
    """Every promise of contract.toml has its mutant (and every mutant one promise); graded, each loses points
    in the tests and also of its row and nowhere else."""
    assert sorted(p["mutant"] for p in PROMISES) == sorted(m["name"] for m in MUTANTS)
    work = tmp_path / "mutants"
    work.mkdir()

    def lost(mutant):
        folder = submission(work, mutant["name"], os.path.join(SECOND, "solution"), mutant)
        graded, _ = grade(folder, work / f"{mutant['name']}.json")
        return mutant["name"], {id_of(t) for t in graded if t["score"] < t["max_score"]}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        failed = dict(pool.map(lost, MUTANTS))
    for p in PROMISES:
        assert failed[p["mutant"]] == set(p["tests"]) | set(p.get("also", [])), p["id"]
    assert contract.mutant_problems(PROMISES, failed) == [] and contract.mutant_notes(PROMISES, failed) == []


def test_the_contract_the_stub_and_the_tests_agree():
    """contract.toml against the stub, the reference's student blocks, the tests and the mutants (the course's
    checks, tools/contract.py); the stub is what tools/make_handout.py makes of the reference; the tests
    import grader.kit only and hold no literal tolerance."""
    found = contract.problems(PROMISES, solution=os.path.join(SECOND, "solution"),
                              handout=os.path.join(SECOND, "handout"), tests=TESTS,
                              seeded=contract.mutants(os.path.join(SECOND, "mutants.toml")))
    assert found == []
    assert contract.student_functions(os.path.join(SECOND, "solution")) == {
        f"{f['stem']}.{name}" for f in TABLE for name in f["functions"]}
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_handout.py"), "--assignment", SECOND, "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for kind in ("public", "private"):
        modules = sorted(os.listdir(os.path.join(SECOND, "tests", kind)))
        assert [m for m in modules if m.endswith(".py")], kind
        for name in modules:
            with open(os.path.join(SECOND, "tests", kind, name), encoding="utf-8") as fh:
                assert kit_problems(fh.read(), public=kind == "public") == [], name


def test_its_config_states_only_what_differs_and_make_config_reads_it():
    """Under NNAG_ASSIGNMENT its config.toml is checked against the same schema (the course's budgets left
    out), states only required settings and changed values, and make config counts its tests' points."""
    env = dict(os.environ, NNAG_ASSIGNMENT=SECOND)
    proc = subprocess.run([PYTHON, "-m", "grader.config"], cwd=AUTOGRADER, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{os.path.join(SECOND, 'config.toml')}: every setting" in proc.stdout
    assert "[budget." not in proc.stdout
    assert all(re.search(rf"^  {stem} +\d+ points in +\d+ tests", proc.stdout, re.M) for stem in STEMS), proc.stdout
    code = ("import tomllib; from grader import config as c\n"
            "raw = tomllib.load(open(c.DEFAULT_PATH, 'rb'))\n"
            "same = [f'{d}.{n}' for d, keys in c.SCHEMA.items() for n, k in keys.items()\n"
            "        if n in c._table(raw, d) and k.default not in (c.REQUIRED, None) and c._table(raw, d)[n] == k.default]\n"
            "print(c.DEFAULT_PATH, same)")
    proc = subprocess.run([PYTHON, "-c", code], cwd=AUTOGRADER, env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == [os.path.join(SECOND, "config.toml"), "[]"], proc.stdout + proc.stderr


def test_no_file_of_the_grader_names_the_second_assignment():
    """Nothing under autograder/ (the grader's code, the course's config, contract, tests and documentation) or
    tools/ names the second assignment's files or functions; the grader's code does not name its folder."""
    names = {f["stem"] for f in TABLE} | {n.split(".")[-1] for f in TABLE for n in f["functions"]}
    hits = []
    for top in ("autograder", "tools"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                with open(path, "rb") as fh:
                    text = fh.read().decode("utf-8", "replace").lower()
                hits += [f"{os.path.relpath(path, ROOT)}: {n}" for n in names if n.lower() in text]
                if top == "autograder" and f"{os.sep}grader{os.sep}" in path and "second_assignment" in text:
                    hits.append(f"{os.path.relpath(path, ROOT)}: second_assignment")
    assert hits == []


def test_the_grader_loaded_for_one_assignment_refuses_another_in_process(tmp_path):
    """--assignment is read before the grader's modules load: given to a grader already loaded for the course,
    it stops with exit 2 and grades nothing."""
    out = tmp_path / "r.json"
    assert run_mod.main(["--assignment", SECOND, "--submission", str(tmp_path), "--results", str(out)]) == 2
    assert not out.exists()
