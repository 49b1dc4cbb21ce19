"""Finding the expected files in an upload: nesting, case, duplicates, links, allowlist."""
import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader.submission import find_files  # noqa: E402


def test_duplicates_warn_and_the_shallowest_is_used(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "numpy_ann.py").write_text("a = 1\n")
    (tmp_path / "old" / "NumPy_ANN.py").write_text("a = 2\n")
    found, warnings = find_files(str(tmp_path))
    assert found["numpy_ann.py"] == str(tmp_path / "numpy_ann.py")
    assert warnings == ["2 files named numpy_ann.py: graded numpy_ann.py, ignored old/NumPy_ANN.py"]


def test_only_allowlisted_regular_files_are_found(tmp_path):
    for name in ("conftest.py", "sitecustomize.py", "numpy.py", "evil.pth", "utils.py"):
        (tmp_path / name).write_text("raise SystemExit\n")
    outside = tmp_path.parent / "outside_numpy_ann.py"
    outside.write_text("a = 1\n")
    os.symlink(outside, tmp_path / "numpy_ann.py")
    found, _ = find_files(str(tmp_path))
    assert found == {}
