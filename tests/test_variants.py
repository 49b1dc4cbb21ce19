"""Mutants must lose points (half of them in public tests); alternatives must get full marks."""
import json
import os
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import variants  # noqa: E402


def run_variants(kind, tmp_path):
    out = tmp_path / f"{kind}.json"
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "variants.py"), kind, "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)
    report = json.loads(out.read_text())
    assert report["errors"] == [], report["errors"]
    return proc, report["rows"]


def test_every_mutant_loses_points_and_public_tests_catch_half(tmp_path):
    proc, rows = run_variants("mutants", tmp_path)
    assert len(rows) >= 40
    assert {r["file"] for r in rows} == {"numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist"}
    assert [r["name"] for r in rows if not r["caught_by"] or r["lost"] <= 0] == []
    assert 2 * sum(r["public"] for r in rows) >= len(rows)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_every_alternative_gets_full_marks(tmp_path):
    proc, rows = run_variants("alternatives", tmp_path)
    assert len(rows) >= 8
    assert [(r["name"], r["failed"]) for r in rows if r["score"] != r["max"]] == []
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_patch_that_no_longer_applies_is_named(tmp_path):
    spec = {"name": "stale", "file": "numpy_ann.py", "edits": [["text that is not in the file", "x"]]}
    with pytest.raises(variants.VariantError, match="stale: the text to replace occurs 0 times in numpy_ann.py"):
        variants.build(spec, str(tmp_path), str(tmp_path / "stale"))
