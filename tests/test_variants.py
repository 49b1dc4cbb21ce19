"""Mutants must lose points (half of them in public tests); alternatives must get full marks."""
import json
import os
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import contract  # noqa: E402
import variants  # noqa: E402


def run_variants(kind, tmp_path):
    out = tmp_path / f"{kind}.json"
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "variants.py"), kind, "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)
    report = json.loads(out.read_text())
    assert report["errors"] == [], report["errors"]
    return proc, report["rows"]


@pytest.mark.duration(470)
def test_every_mutant_loses_points_and_public_tests_catch_half(tmp_path):
    proc, rows = run_variants("mutants", tmp_path)
    assert len(rows) >= 40
    assert {r["file"] for r in rows} == {"numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist"}
    assert [r["name"] for r in rows if not r["caught_by"] or r["lost"] <= 0] == []
    assert 2 * sum(r["public"] for r in rows) >= len(rows)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert contract_mismatches(rows) == []


def contract_mismatches(rows):
    """Each promise's mutant must lose points in the tests the contract names for that promise
    (at least one of ``tests``) and nowhere else (``tests`` and ``also``)."""
    tests = contract.test_functions()
    by_name = {r["name"]: r for r in rows}
    wrong = []
    for p in contract.load():
        row = by_name.get(p["mutant"])
        if row is None:
            wrong.append((p["id"], p["mutant"], "not graded"))
            continue
        caught = {contract.test_of_result(name, tests) or name for name in row["caught_by"]}
        allowed = set(p["tests"]) | set(p.get("also", []))
        if not caught & set(p["tests"]):
            wrong.append((p["id"], p["mutant"], "loses no points in the promise's tests", sorted(caught)))
        elif not caught <= allowed:
            wrong.append((p["id"], p["mutant"], "also loses points in", sorted(caught - allowed)))
    return wrong


def test_a_mutant_caught_elsewhere_breaks_the_contract():
    promise = contract.load()[0]
    rows = [{"name": promise["mutant"], "caught_by": ["PyTorchANN: self.model is Linear, ReLU, Linear with the "
                                                      "given sizes [6-5-3]"]}]
    found = [w for w in contract_mismatches(rows) if w[0] == promise["id"]]
    assert found == [(promise["id"], promise["mutant"], "loses no points in the promise's tests",
                      ["public/test_pytorch_ann.py::test_architecture"])]


@pytest.mark.duration(172)
def test_every_alternative_gets_full_marks(tmp_path):
    proc, rows = run_variants("alternatives", tmp_path)
    assert len(rows) >= 8
    assert [(r["name"], r["failed"]) for r in rows if r["score"] != r["max"]] == []
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_patch_that_no_longer_applies_is_named(tmp_path):
    spec = {"name": "stale", "file": "numpy_ann.py", "edits": [["text that is not in the file", "x"]]}
    with pytest.raises(variants.VariantError, match="stale: the text to replace occurs 0 times in numpy_ann.py"):
        variants.build(spec, str(tmp_path), str(tmp_path / "stale"))
